/**
 * Latency of SQLiteTokenStore next to raw prepared statements on the same better-sqlite3 connection.
 * For 1,000 and 100,000 stored tokens: findToken by user name and saveToken updating an existing user,
 * median over OPERATIONS calls each. Run with `pnpm bench` in packages/store-sqlite.
 *
 * Two raw baselines: the statement as Zoho's sample (and the issue) writes it, `WHERE user_name = ?`, and
 * the same with `AND user_name <> ''`, the form that lets SQLite use the partial unique index.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OAuthToken, UserSignature } from '@crm/core';
import { newTokenId } from '@crm/core/store-kit';
import Database from 'better-sqlite3';
import { SQLiteTokenStore } from '../src/index.js';

/** BENCH_SIZES=1000 for a quick check; the reported figures use both sizes. */
const SIZES = (process.env.BENCH_SIZES ?? '1000,100000').split(',').map(Number);
const OPERATIONS = 2_000;
const WARMUP = 200;

const userName = (index: number) => `user-${index}@example.com:60000000`;

/** Median of `count` timed calls, in microseconds. `action` gets the call's index. */
async function medianMicros(count: number, action: (index: number) => unknown): Promise<number> {
  for (let index = 0; index < WARMUP; index += 1) await action(index);
  const micros: number[] = [];
  for (let index = 0; index < count; index += 1) {
    const started = process.hrtime.bigint();
    await action(index);
    micros.push(Number(process.hrtime.bigint() - started) / 1000);
  }
  micros.sort((a, b) => a - b);
  return micros[Math.floor(micros.length / 2)] as number;
}

interface Row {
  tokens: number;
  operation: string;
  store: number;
  rawAsZoho: number;
  rawIndexed: number;
}

async function measure(folder: string, size: number): Promise<Row[]> {
  const database = new Database(join(folder, `bench-${size}.db`));
  database.pragma('journal_mode = WAL');
  const store = new SQLiteTokenStore({ database });
  const insert = database.prepare(
    'INSERT INTO oauthtoken (id, user_name, client_id, client_secret, refresh_token, access_token, grant_token, expiry_time, redirect_url, api_domain) ' +
      'VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)',
  );
  database.transaction(() => {
    for (let index = 0; index < size; index += 1) {
      insert.run(
        newTokenId(),
        userName(index),
        '1000.CLIENTID',
        'client-secret',
        `1000.refresh.${index}`,
        `1000.access.${index}`,
        String(Date.now() + 3_600_000),
        'https://example.com/callback',
        'https://www.zohoapis.com',
      );
    }
  })();
  database.pragma('optimize');

  // Users picked by a fixed stride, so every run touches the same spread of rows.
  const pick = (index: number) => userName((index * 7919) % size);
  const findAsZoho = database.prepare('SELECT * FROM oauthtoken WHERE user_name = ?');
  const findIndexed = database.prepare("SELECT * FROM oauthtoken WHERE user_name = ? AND user_name <> ''");
  const updateAsZoho = database.prepare('UPDATE oauthtoken SET access_token = ?, expiry_time = ? WHERE user_name = ?');
  const updateIndexed = database.prepare("UPDATE oauthtoken SET access_token = ?, expiry_time = ? WHERE user_name = ? AND user_name <> ''");
  const expiry = () => Date.now() + 3_600_000;

  const find = {
    tokens: size,
    operation: 'findToken by user name',
    store: await medianMicros(OPERATIONS, (index) => store.findToken(new OAuthToken({ userSignature: new UserSignature(pick(index)) }))),
    rawAsZoho: await medianMicros(OPERATIONS, (index) => findAsZoho.get(pick(index))),
    rawIndexed: await medianMicros(OPERATIONS, (index) => findIndexed.get(pick(index))),
  };
  const save = {
    tokens: size,
    operation: 'saveToken (update)',
    store: await medianMicros(OPERATIONS, (index) =>
      store.saveToken(
        new OAuthToken({ userSignature: new UserSignature(pick(index)), accessToken: `1000.access.s${index}`, expiryTime: expiry() }),
      ),
    ),
    rawAsZoho: await medianMicros(OPERATIONS, (index) => updateAsZoho.run(`1000.access.z${index}`, String(expiry()), pick(index))),
    rawIndexed: await medianMicros(OPERATIONS, (index) => updateIndexed.run(`1000.access.i${index}`, String(expiry()), pick(index))),
  };
  if ((await store.getTokens()).length !== size) throw new Error('the benchmark changed the number of stored tokens');
  await store.close();
  database.close();
  return [find, save];
}

/** Two decimals, four below 0.1 so a tiny ratio does not print as 0.00. */
const ratio = (store: number, raw: number) => (store / raw).toFixed(store / raw < 0.1 ? 4 : 2);

async function main(): Promise<void> {
  const folder = mkdtempSync(join(tmpdir(), 'crm-sqlite-bench-'));
  try {
    const rows: Row[] = [];
    for (const size of SIZES) rows.push(...(await measure(folder, size)));
    const probe = new Database(':memory:');
    const sqliteVersion = probe.prepare('SELECT sqlite_version()').pluck().get();
    probe.close();
    console.log(`SQLiteTokenStore vs raw prepared statements, same connection; WAL file in ${tmpdir()}, synchronous=FULL (default)`);
    console.log(`node ${process.version}, SQLite ${sqliteVersion}; median of ${OPERATIONS} calls after ${WARMUP} warm-up calls, in µs\n`);
    const header = ['tokens', 'operation', 'store µs', 'raw, Zoho form µs', 'ratio', 'raw, indexed form µs', 'ratio'];
    const lines = rows.map((row) => [
      row.tokens.toLocaleString('en-US'),
      row.operation,
      row.store.toFixed(1),
      row.rawAsZoho.toFixed(1),
      ratio(row.store, row.rawAsZoho),
      row.rawIndexed.toFixed(1),
      ratio(row.store, row.rawIndexed),
    ]);
    const widths = header.map((title, column) => Math.max(title.length, ...lines.map((line) => (line[column] as string).length)));
    const format = (cells: string[]) => `| ${cells.map((cell, column) => cell.padEnd(widths[column] as number)).join(' | ')} |`;
    console.log(format(header));
    console.log(`|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`);
    for (const line of lines) console.log(format(line));
    console.log(
      "\nraw, Zoho form: `WHERE user_name = ?` (cannot use the partial index: scans). raw, indexed form: `... AND user_name <> ''`.",
    );
    console.log(
      'ratio = store median / raw median. The store builds an OAuthToken per call and, on save, reads and checks in one BEGIN IMMEDIATE transaction.',
    );
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

await main();
