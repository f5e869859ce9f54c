/**
 * Latency of SQLiteTokenStore next to raw prepared statements on the same better-sqlite3 connection.
 * For 1,000 and 100,000 stored tokens: findToken by user name and saveToken of a refreshed access token
 * (by user name, and by id as TokenManager saves it), median over OPERATIONS calls each, the variants of
 * one operation taking turns so that a busy machine slows them alike. Run with `pnpm bench` in
 * packages/store-sqlite; it builds the package and measures the build (tsx's transform of the sources adds a
 * name-setting call to every closure the store creates).
 *
 * Baselines: the floor, the statement as Zoho's sample (and the issue) writes it with `AND user_name <> ''`, the
 * form that lets SQLite use the partial unique index; the Zoho form itself, `WHERE user_name = ?`, which scans;
 * and what Keyv's SQLite adapter does for a token kept as one JSON value keyed by user name (a SELECT by key and
 * JSON.parse; JSON.stringify and an upsert), here through the same synchronous driver.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OAuthToken, UserSignature } from '@crm/core';
import { newTokenId } from '@crm/core/store-kit';
import Database from 'better-sqlite3';
import { SQLiteTokenStore } from '../dist/index.js';

/** BENCH_SIZES=1000 for a quick check; the reported figures use both sizes. */
const SIZES = (process.env.BENCH_SIZES ?? '1000,100000').split(',').map(Number);
const OPERATIONS = 2_000;
const ZOHO_OPERATIONS = 200;
const WARMUP = 200;

const userName = (index: number) => `user-${index}@example.com:60000000`;

/**
 * Median of `count` timed calls of each variant, in microseconds, after WARMUP calls each. The variants take
 * turns in rotating order; each gets the call's index.
 */
async function interleavedMedians(variants: ((index: number) => unknown)[], count: number): Promise<number[]> {
  const samples: number[][] = variants.map(() => []);
  for (let index = 0; index < WARMUP + count; index += 1) {
    for (let turn = 0; turn < variants.length; turn += 1) {
      const which = (index + turn) % variants.length;
      const started = process.hrtime.bigint();
      await (variants[which] as (index: number) => unknown)(index);
      if (index >= WARMUP) samples[which]?.push(Number(process.hrtime.bigint() - started) / 1000);
    }
  }
  return samples.map((micros) => {
    micros.sort((a, b) => a - b);
    return micros[Math.floor(micros.length / 2)] as number;
  });
}

interface Row {
  tokens: number;
  operation: string;
  store: number;
  rawIndexed: number;
  rawAsZoho: number;
  keyv: number;
}

async function measure(folder: string, size: number): Promise<Row[]> {
  const database = new Database(join(folder, `bench-${size}.db`));
  database.pragma('journal_mode = WAL');
  const store = new SQLiteTokenStore({ database });
  const insert = database.prepare(
    'INSERT INTO oauthtoken (id, user_name, client_id, client_secret, refresh_token, access_token, grant_token, expiry_time, redirect_url, api_domain) ' +
      'VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)',
  );
  database.exec('CREATE TABLE keyv (key TEXT PRIMARY KEY, value TEXT)');
  const keyvSet = database.prepare('INSERT INTO keyv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
  const stored: Record<string, string | number>[] = [];
  database.transaction(() => {
    for (let index = 0; index < size; index += 1) {
      const fields = {
        id: newTokenId(),
        userName: userName(index),
        clientId: '1000.CLIENTID',
        clientSecret: 'client-secret',
        refreshToken: `1000.refresh.${index}`,
        accessToken: `1000.access.${index}`,
        expiryTime: Date.now() + 3_600_000,
        redirectUrl: 'https://example.com/callback',
        apiDomain: 'https://www.zohoapis.com',
      };
      stored.push(fields);
      insert.run(
        fields.id,
        fields.userName,
        fields.clientId,
        fields.clientSecret,
        fields.refreshToken,
        fields.accessToken,
        String(fields.expiryTime),
        fields.redirectUrl,
        fields.apiDomain,
      );
      keyvSet.run(fields.userName, JSON.stringify(fields));
    }
  })();
  database.pragma('optimize');

  // Users picked by a fixed stride, so every run touches the same spread of rows.
  const spread = (index: number) => (index * 7919) % size;
  const pick = (index: number) => userName(spread(index));
  const findIndexed = database.prepare("SELECT * FROM oauthtoken WHERE user_name = ? AND user_name <> ''");
  const findAsZoho = database.prepare('SELECT * FROM oauthtoken WHERE user_name = ?');
  const keyvGet = database.prepare('SELECT value FROM keyv WHERE key = ?').pluck();
  const updateIndexed = database.prepare("UPDATE oauthtoken SET access_token = ?, expiry_time = ? WHERE user_name = ? AND user_name <> ''");
  const updateAsZoho = database.prepare('UPDATE oauthtoken SET access_token = ?, expiry_time = ? WHERE user_name = ?');
  const expiry = () => Date.now() + 3_600_000;
  const keyvSave = (index: number) =>
    keyvSet.run(pick(index), JSON.stringify({ ...stored[spread(index)], accessToken: `1000.access.k${index}`, expiryTime: expiry() }));

  const [findStore, findIndexedMicros, findKeyv] = await interleavedMedians(
    [
      (index) => store.findToken(new OAuthToken({ userSignature: new UserSignature(pick(index)) })),
      (index) => findIndexed.get(pick(index)),
      (index) => JSON.parse(keyvGet.get(pick(index)) as string),
    ],
    OPERATIONS,
  );
  const [saveStore, saveIndexed, saveKeyv] = await interleavedMedians(
    [
      (index) =>
        store.saveToken(
          new OAuthToken({ userSignature: new UserSignature(pick(index)), accessToken: `1000.access.s${index}`, expiryTime: expiry() }),
        ),
      (index) => updateIndexed.run(`1000.access.i${index}`, String(expiry()), pick(index)),
      // Keyv's set is one upsert of the whole value, which the application holds.
      keyvSave,
    ],
    OPERATIONS,
  );
  const [saveByIdStore, saveByIdIndexed, saveByIdKeyv] = await interleavedMedians(
    [
      (index) =>
        store.saveToken(
          new OAuthToken({
            id: stored[spread(index)]?.id as string,
            accessToken: `1000.access.d${index}`,
            expiryTime: expiry(),
            apiDomain: 'https://www.zohoapis.com',
          }),
        ),
      (index) => updateIndexed.run(`1000.access.i${index}`, String(expiry()), pick(index)),
      keyvSave,
    ],
    OPERATIONS,
  );
  // Zoho's form scans the table: timed on its own, with fewer calls, so its scans do not slow the others.
  const [findAsZohoMicros] = await interleavedMedians([(index) => findAsZoho.get(pick(index))], ZOHO_OPERATIONS);
  const [saveAsZoho] = await interleavedMedians(
    [(index) => updateAsZoho.run(`1000.access.z${index}`, String(expiry()), pick(index))],
    ZOHO_OPERATIONS,
  );
  const find = {
    tokens: size,
    operation: 'findToken by user name',
    store: findStore as number,
    rawIndexed: findIndexedMicros as number,
    rawAsZoho: findAsZohoMicros as number,
    keyv: findKeyv as number,
  };
  const save = {
    tokens: size,
    operation: 'saveToken (user name, refreshed)',
    store: saveStore as number,
    rawIndexed: saveIndexed as number,
    rawAsZoho: saveAsZoho as number,
    keyv: saveKeyv as number,
  };
  const saveById = {
    tokens: size,
    operation: 'saveToken (id, refreshed)',
    store: saveByIdStore as number,
    rawIndexed: saveByIdIndexed as number,
    rawAsZoho: saveAsZoho as number,
    keyv: saveByIdKeyv as number,
  };
  if ((await store.getTokens()).length !== size) throw new Error('the benchmark changed the number of stored tokens');
  await store.close();
  database.close();
  return [find, save, saveById];
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
    console.log(
      `node ${process.version}, SQLite ${sqliteVersion}; median of ${OPERATIONS} calls after ${WARMUP} warm-up calls, variants interleaved, in µs\n`,
    );
    const header = ['tokens', 'operation', 'store µs', 'floor µs', 'ratio', 'Zoho form µs', 'ratio', 'Keyv-like µs', 'ratio'];
    const lines = rows.map((row) => [
      row.tokens.toLocaleString('en-US'),
      row.operation,
      row.store.toFixed(1),
      row.rawIndexed.toFixed(1),
      ratio(row.store, row.rawIndexed),
      row.rawAsZoho.toFixed(1),
      ratio(row.store, row.rawAsZoho),
      row.keyv.toFixed(1),
      ratio(row.store, row.keyv),
    ]);
    const widths = header.map((title, column) => Math.max(title.length, ...lines.map((line) => (line[column] as string).length)));
    const format = (cells: string[]) => `| ${cells.map((cell, column) => cell.padEnd(widths[column] as number)).join(' | ')} |`;
    console.log(format(header));
    console.log(`|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`);
    for (const line of lines) console.log(format(line));
    console.log(
      "\nfloor: the prepared statement with `AND user_name <> ''` (uses the partial unique index). Zoho form: `WHERE user_name = ?` (scans).",
    );
    console.log('Keyv-like: the token as one JSON value keyed by user name: SELECT by key + JSON.parse; JSON.stringify + one upsert.');
    console.log('ratio = store median / baseline median.');
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

await main();
