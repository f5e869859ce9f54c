import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { OAuthToken, UserSignature } from '@crm/core';
import { encryptedStore, rekey, saveSampleSecrets, secretsShownIn } from '@crm/encryption';
import { describeTokenStore } from '@crm/store-conformance/jest';
import Database from 'better-sqlite3';
import { SQLiteTokenStore } from '../src/index.js';
import { createConformanceOptions, TEST_KEYS } from './encrypted-conformance-options.js';

// The whole suite on the encrypted store; the worker processes load the encrypted options too.
describeTokenStore('encryptedStore(SQLiteTokenStore)', {
  ...createConformanceOptions(),
  module: join(__dirname, 'encrypted-conformance-options.ts'),
});

const PACKAGE = join(__dirname, '..');
const folders: string[] = [];
function tempFile(): string {
  const folder = mkdtempSync(join(tmpdir(), 'crm-sqlite-encrypted-'));
  folders.push(folder);
  return join(folder, 'tokens.db');
}
const workers: ChildProcess[] = [];
afterAll(() => {
  for (const worker of workers) if (worker.exitCode === null && worker.signalCode === null) worker.kill('SIGKILL');
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

function sampleToken(user: string): OAuthToken {
  const secret = (kind: string) => `1000.${kind}${randomBytes(16).toString('hex')}`;
  return new OAuthToken({
    userSignature: new UserSignature(user),
    clientId: '1000.CLIENT',
    clientSecret: secret('cs'),
    refreshToken: secret('rt'),
    accessToken: secret('at'),
    grantToken: secret('gt'),
    expiryTime: Date.now() + 3_600_000,
  });
}

test('the SQLite file and its rows hold none of the secrets, in any encoding', async () => {
  const filename = tempFile();
  const store = encryptedStore(new SQLiteTokenStore({ filename }), { keys: TEST_KEYS, activeKeyId: 't1' });
  const { secrets, userName } = await saveSampleSecrets(store); // an update too: the old values must not linger
  await store.close?.();
  const database = new Database(filename, { readonly: true });
  const rows = database.prepare('SELECT * FROM oauthtoken').all();
  database.close();
  expect(rows).toHaveLength(5);
  const raw = [
    JSON.stringify(rows),
    ...[filename, `${filename}-wal`].filter(existsSync).map((file) => readFileSync(file).toString('latin1')),
  ].join('\n');
  expect(secretsShownIn(raw, secrets)).toEqual([]);
  expect(raw).toContain(userName); // user names and client ids are not secret, and stay searchable
});

/**
 * A worker process that keeps reading (by access and by refresh token) and writing (a new access token
 * under the `refresh:<id>` lock, as TokenManager does; and new users) until told to stop, with both keys and
 * the new one active. It prints one line per round, and at the end every token's last values.
 */
const WORKER = `
import { OAuthToken, UserSignature } from '@crm/core';
import { encryptedStore } from '@crm/encryption';
import { SQLiteTokenStore } from ${JSON.stringify(pathToFileURL(join(PACKAGE, 'dist', 'index.js')).href)};
const { filename, keys, users } = JSON.parse(process.argv[1]);
const store = encryptedStore(new SQLiteTokenStore({ filename }), { keys, activeKeyId: 't2' });
let stop = false;
process.stdin.on('data', () => { stop = true; });
const failures = [];
for (let round = 0; !stop || round < 3; round++) {
  for (const user of users) {
    const byAccess = await store.findToken(new OAuthToken({ accessToken: user.accessToken }));
    if (byAccess?.id !== user.id) failures.push('round ' + round + ': ' + user.id + ' not found by access token');
    const byRefresh = await store.findToken(new OAuthToken({ refreshToken: user.refreshToken, clientId: 'c', clientSecret: 's' }));
    if (byRefresh?.id !== user.id) failures.push('round ' + round + ': ' + user.id + ' not found by refresh token');
    const accessToken = '1000.at-' + round + '-' + Math.random().toString(36).slice(2);
    await store.withLock('refresh:' + user.id, async (lock) => {
      await lock.confirm();
      await store.saveToken(new OAuthToken({ id: user.id, accessToken, expiryTime: round }));
    });
    user.accessToken = accessToken;
  }
  const added = new OAuthToken({ userSignature: new UserSignature('new-' + round + '-' + Math.random()), clientSecret: 'cs-' + round, refreshToken: 'rt-' + round + '-' + Math.random(), accessToken: 'at-new-' + round + '-' + Math.random() });
  await store.saveToken(added);
  users.push({ id: added.id, accessToken: added.accessToken, refreshToken: added.refreshToken });
  process.stdout.write('round\\n');
  // better-sqlite3 answers synchronously: without this the loop never lets stdout flush or stdin arrive.
  await new Promise((resolve) => setImmediate(resolve));
}
await store.close();
process.stdout.write(JSON.stringify({ users, failures }) + '\\n');
`;

test('a rotation with two keys while another process keeps reading and writing loses nothing', async () => {
  if (!existsSync(join(PACKAGE, 'dist', 'index.js'))) throw new Error('packages/store-sqlite is not built: run `npx tsup` there first');
  const filename = tempFile();
  const before = encryptedStore(new SQLiteTokenStore({ filename }), { keys: { t1: TEST_KEYS.t1 }, activeKeyId: 't1' });
  const tokens = Array.from({ length: 60 }, (_, index) => sampleToken(`rotate-${index}@zylker.com`));
  for (const token of tokens) await before.saveToken(token);
  await before.close?.();
  const busy = tokens.slice(0, 10).map((token) => ({ id: token.id, accessToken: token.accessToken, refreshToken: token.refreshToken }));

  const worker: ChildProcess = spawn(
    process.execPath,
    ['--input-type=module', '-e', WORKER, JSON.stringify({ filename, keys: TEST_KEYS, users: busy })],
    {
      cwd: PACKAGE,
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  workers.push(worker);
  let stdout = '';
  let stderr = '';
  let rounds = 0;
  const roundWaiters: Array<() => void> = [];
  worker.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    rounds = stdout.split('\n').filter((line) => line === 'round').length;
    for (const wake of roundWaiters.splice(0)) wake();
  });
  worker.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => worker.on('close', resolve));
  const nextRound = (after: number) =>
    new Promise<void>((resolve, reject) => {
      const check = () => (rounds > after ? resolve() : roundWaiters.push(check));
      exited.then(() => reject(new Error(`the worker ended early:\n${stderr}`)));
      check();
    });

  const store = new SQLiteTokenStore({ filename });
  let roundsDuringRekey = 0;
  const startRound = rounds;
  // Every tenth token, wait for the worker to finish another round: its reads and writes interleave with the rekey.
  const report = await rekey(store, {
    keys: TEST_KEYS,
    activeKeyId: 't2',
    onProgress: async ({ done }) => {
      if (done % 10 === 0) {
        await nextRound(rounds);
        roundsDuringRekey = rounds - startRound;
      }
    },
  }).finally(() => worker.stdin!.end('stop\n'));
  expect(await exited).toBe(0);
  const result = JSON.parse(stdout.trim().split('\n').at(-1) as string) as {
    users: Array<{ id: string; accessToken: string; refreshToken: string }>;
    failures: string[];
  };
  expect(result.failures).toEqual([]);
  expect(roundsDuringRekey).toBeGreaterThanOrEqual(6);
  expect(report.before.t1).toBeGreaterThan(200); // the worker may have written a few values under t2 already
  expect(Object.keys(report.after)).toEqual(['t2']);
  expect(report.resealed + report.current).toBe(60);
  expect(report.failed).toEqual([]);

  // Every token is readable with the new key alone, and holds the worker's last writes.
  const after = encryptedStore(store, { keys: { t2: TEST_KEYS.t2 }, activeKeyId: 't2', plaintext: 'refuse' });
  const stored = await after.getTokens();
  expect(stored).toHaveLength(60 + result.users.length - 10);
  const byId = new Map(stored.map((token) => [token.id, token]));
  for (const user of result.users) {
    expect(byId.get(user.id)?.accessToken).toBe(user.accessToken);
    expect(byId.get(user.id)?.refreshToken).toBe(user.refreshToken);
  }
  for (const token of tokens.slice(10)) expect(byId.get(token.id)?.toFields()).toEqual(token.toFields());
  for (const token of tokens.slice(0, 10)) {
    expect(byId.get(token.id)?.clientSecret).toBe(token.clientSecret);
    expect(byId.get(token.id)?.grantToken).toBe(token.grantToken);
  }
  expect((await rekey(after)).resealed).toBe(0);
  await after.close?.();
});
