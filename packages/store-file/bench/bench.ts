/**
 * findToken by user name and saveToken (update) with 1,000 and 100,000 stored tokens: this store next to
 * Zoho's own FileStore from @zohocrm/typescript-sdk-8.0, in the same process, on the same disk.
 * Run: `pnpm bench` in packages/store-file (`-- --quick` for a short smoke run).
 *
 * Zoho's store reads the whole file on every call and rewrites it on every save, so it gets fewer
 * operations at 100,000 tokens; the table prints every operation count.
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { OAuthToken, UserSignature } from '@crm/core';
import { FileStore, OAuthBuilder, UserSignature as ZohoUserSignature } from '@zohocrm/typescript-sdk-8.0';
import { FileTokenStore, formatTokenFile, formatTokenLine } from '../src/index.js';

const quick = process.argv.includes('--quick');

/** Operations per measurement: [ours, Zoho's]. */
const PLAN: Array<{ size: number; find: [number, number]; save: [number, number]; open: [number, number] }> = [
  { size: 1_000, find: [5_000, 1_000], save: [1_000, 1_000], open: [50, 0] },
  { size: 100_000, find: [5_000, 30], save: [1_000, 20], open: [5, 0] },
];

/** A deterministic pseudo-random sequence (mulberry32), so both stores look up the same users. */
function randomSequence(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const hex = (random: () => number, length: number) => Array.from({ length }, () => Math.floor(random() * 16).toString(16)).join('');
const userName = (n: number) => `user${n}@zylker.com:7000${n % 97}`;

/** A token file with `size` realistic tokens (Zoho-sized values), ids 1..size as Zoho numbers them. */
function writeTokenFile(path: string, size: number): void {
  const random = randomSequence(size);
  const lines: string[] = [];
  for (let n = 1; n <= size; n++) {
    lines.push(
      formatTokenLine(
        new OAuthToken({
          id: String(n),
          userSignature: new UserSignature(userName(n)),
          clientId: '1000.ABCDEFGHIJKLMNOPQRSTUVWXYZ0123',
          clientSecret: hex(random, 42),
          refreshToken: `1000.${hex(random, 32)}.${hex(random, 32)}`,
          accessToken: `1000.${hex(random, 32)}.${hex(random, 32)}`,
          expiryTime: 1764000000000 + n,
          redirectUrl: 'https://zylker.com/oauth/callback',
          apiDomain: 'https://www.zohoapis.com',
        }),
      ),
    );
  }
  writeFileSync(path, formatTokenFile(lines), { mode: 0o600 });
}

interface Measurement {
  medianUs: number;
  ops: number;
}

async function measure(ops: number, warmup: number, run: (op: number) => Promise<unknown>): Promise<Measurement> {
  for (let op = 0; op < warmup; op++) await run(op);
  const times: number[] = [];
  for (let op = 0; op < ops; op++) {
    const started = process.hrtime.bigint();
    await run(op + warmup);
    times.push(Number(process.hrtime.bigint() - started) / 1000);
  }
  times.sort((a, b) => a - b);
  return { medianUs: times[Math.floor(times.length / 2)] ?? Number.NaN, ops };
}

const scaled = (ops: number) => (quick ? Math.max(1, Math.ceil(ops / 50)) : ops);
const format = (us: number) => (us >= 1000 ? `${(us / 1000).toFixed(1)} ms` : `${us.toFixed(1)} µs`);

async function main(): Promise<void> {
  const folder = mkdtempSync(join(tmpdir(), 'crm-store-file-bench-'));
  const rows: string[] = [];
  const started = Date.now();
  try {
    for (const { size, find, save, open } of PLAN) {
      const oursPath = join(folder, `ours-${size}.txt`);
      const zohoPath = join(folder, `zoho-${size}.txt`);
      writeTokenFile(oursPath, size);
      writeTokenFile(zohoPath, size);
      const fileMb = (statSync(oursPath).size / 1e6).toFixed(1);
      const pick = randomSequence(42);
      const users = Array.from({ length: 20_000 }, () => 1 + Math.floor(pick() * size));
      const userAt = (op: number) => userName(users[op % users.length] as number);

      const ours = new FileTokenStore({ filename: oursPath });
      const zoho = new FileStore(zohoPath);

      if (open[0] > 0) {
        // The cost of the first lookup of a fresh store: reading, parsing and indexing the file.
        const opened = await measure(scaled(open[0]), 0, (op) =>
          new FileTokenStore({ filename: oursPath }).findToken(new OAuthToken({ userSignature: new UserSignature(userAt(op)) })),
        );
        rows.push(
          `| ${size.toLocaleString('en')} | first findToken of a new store (read + parse + index) | ${format(opened.medianUs)} (${opened.ops}) | — | — |`,
        );
      }

      const oursFind = await measure(scaled(find[0]), 100, async (op) => {
        const found = await ours.findToken(new OAuthToken({ userSignature: new UserSignature(userAt(op)) }));
        if (found === null) throw new Error('a stored user was not found');
      });
      const zohoFind = await measure(scaled(find[1]), 2, async (op) => {
        const found = await zoho.findToken(new OAuthBuilder().userSignature(new ZohoUserSignature(userAt(op))).build());
        if (found === null) throw new Error('a stored user was not found by Zoho');
      });
      rows.push(
        `| ${size.toLocaleString('en')} | findToken by user name | ${format(oursFind.medianUs)} (${oursFind.ops}) | ${format(zohoFind.medianUs)} (${zohoFind.ops}) | ${(zohoFind.medianUs / oursFind.medianUs).toFixed(0)}× |`,
      );

      const oursSave = await measure(scaled(save[0]), 5, (op) =>
        ours.saveToken(
          new OAuthToken({
            userSignature: new UserSignature(userAt(op)),
            accessToken: `1000.new-access-${op}`,
            expiryTime: 1765000000000 + op,
          }),
        ),
      );
      const zohoSave = await measure(scaled(save[1]), 1, (op) => {
        const token = new OAuthBuilder().userSignature(new ZohoUserSignature(userAt(op))).build();
        token.setAccessToken(`1000.new-access-${op}`);
        token.setExpiresIn(String(1765000000000 + op));
        return zoho.saveToken(token);
      });
      rows.push(
        `| ${size.toLocaleString('en')} | saveToken (update of a stored user) | ${format(oursSave.medianUs)} (${oursSave.ops}) | ${format(zohoSave.medianUs)} (${zohoSave.ops}) | ${(zohoSave.medianUs / oursSave.medianUs).toFixed(1)}× |`,
      );
      const stored = (await ours.getTokens()).length;
      if (stored !== size) throw new Error(`this store holds ${stored} tokens after the updates, expected ${size}`);
      console.error(`${size} tokens (${fileMb} MB file) done after ${((Date.now() - started) / 1000).toFixed(0)} s`);
    }
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
  console.log(
    `FileTokenStore vs Zoho FileStore (@zohocrm/typescript-sdk-8.0 3.0.0), Node ${process.version}, ${cpus().length} CPUs, files in ${tmpdir()}`,
  );
  console.log('Median per operation (operations measured). Ratio = Zoho median / this store median.\n');
  console.log('| tokens | operation | FileTokenStore | Zoho FileStore | ratio |');
  console.log('| ---: | --- | ---: | ---: | ---: |');
  for (const row of rows) console.log(row);
  console.log(`\nTotal ${((Date.now() - started) / 1000).toFixed(0)} s.${quick ? ' (--quick: operation counts divided by 50)' : ''}`);
}

await main();
