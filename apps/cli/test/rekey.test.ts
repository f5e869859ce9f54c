import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { encryptedStore } from '@crm/encryption';
import { SQLiteTokenStore } from '@crm/store-sqlite';
import { expectNoSecret, runCli, sampleToken, secretsOf, tempFolder } from './helpers';

const Database = createRequire(require.resolve('@crm/store-sqlite'))('better-sqlite3') as new (
  filename: string,
) => { exec(sql: string): void; close(): void };

const K1 = randomBytes(32).toString('base64');
const K2 = randomBytes(32).toString('base64');

/** A SQLite store holding three tokens sealed under k1 and one stored before encryption. */
async function seeded(folder: string) {
  const filename = join(folder, 'tokens.db');
  const tokens = [sampleToken('ana@zylker.com'), sampleToken('ben@zylker.com'), sampleToken('cid@zylker.com')];
  const store = encryptedStore(new SQLiteTokenStore({ filename }), { keys: { k1: K1 }, activeKeyId: 'k1' });
  for (const token of tokens) await store.saveToken(token);
  await store.close?.();
  const legacy = sampleToken('dee@zylker.com');
  const plain = new SQLiteTokenStore({ filename });
  await plain.saveToken(legacy);
  await plain.close();
  return { url: `sqlite:${filename}`, filename, tokens: [...tokens, legacy] };
}

test('rekey re-seals every token under the active key, prints counts per key and no secret; running it again changes nothing', async () => {
  const folder = tempFolder();
  try {
    const { url, filename, tokens } = await seeded(folder.path);
    const env = { CRM_TOKEN_KEYS: `k1:${K1},k2:${K2}`, CRM_TOKEN_ACTIVE_KEY: 'k2' };
    const first = await runCli(['rekey', '--store', url], { env });
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('before: sealed values per key: k1 12, plaintext 4');
    expect(first.stdout).toContain('4 re-sealed, 0 already on k2');
    expect(first.stdout).toContain('after: sealed values per key: k2 16');
    expect(first.stdout).toMatch(/rekey 4\/4: \w+ re-sealed/); // plain lines when stdout is not a terminal
    expectNoSecret(first.stdout + first.stderr, [...secretsOf(tokens), K1, K2]);

    const second = await runCli(['rekey', '--store', url], { env });
    expect(second.code).toBe(0);
    expect(second.stdout).toContain('0 re-sealed, 4 already on k2');

    // Only the new key is needed now, and every value is as it was.
    const store = encryptedStore(new SQLiteTokenStore({ filename }), { keys: { k2: K2 }, activeKeyId: 'k2', plaintext: 'refuse' });
    for (const token of tokens) expect((await store.findTokenById(token.id as string))?.toFields()).toEqual(token.toFields());
    await store.close?.();
  } finally {
    folder.remove();
  }
});

test('missing or bad keys are usage errors (exit 2) that change nothing and show no key', async () => {
  const folder = tempFolder();
  try {
    const { url, filename } = await seeded(folder.path);
    const before = (await new SQLiteTokenStore({ filename }).getTokens()).map((token) => token.toFields());
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{}, /CRM_TOKEN_KEYS is not set/],
      [{ CRM_TOKEN_KEYS: `k1:${K1}` }, /CRM_TOKEN_ACTIVE_KEY is not set/],
      [{ CRM_TOKEN_KEYS: `k1:${K1}`, CRM_TOKEN_ACTIVE_KEY: 'k2' }, /activeKeyId k2 is not one of the keys/],
      [{ CRM_TOKEN_KEYS: `k1:${K1.slice(0, 20)}`, CRM_TOKEN_ACTIVE_KEY: 'k1' }, /key k1/],
      [{ CRM_TOKEN_KEYS: K1, CRM_TOKEN_ACTIVE_KEY: 'k1' }, /without an id/],
    ];
    for (const [env, message] of cases) {
      const result = await runCli(['rekey', '--store', url], { env });
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stdout + result.stderr).not.toContain(K1.slice(0, 20));
    }
    const after = (await new SQLiteTokenStore({ filename }).getTokens()).map((token) => token.toFields());
    expect(after).toEqual(before);
  } finally {
    folder.remove();
  }
});

test('a token sealed under a key not given is reported by id (exit 1); the others are re-sealed', async () => {
  const folder = tempFolder();
  try {
    const { url } = await seeded(folder.path);
    const result = await runCli(['rekey', '--store', url], { env: { CRM_TOKEN_KEYS: `k2:${K2}`, CRM_TOKEN_ACTIVE_KEY: 'k2' } });
    expect(result.code).toBe(1);
    expect(result.stdout.match(/failed: token \w+: CORRUPT_DATA/g)).toHaveLength(3);
    expect(result.stdout).toContain('1 re-sealed, 0 already on k2, 3 failed');
  } finally {
    folder.remove();
  }
});

/** The secrets of `tokens` found anywhere in the raw bytes of the files in `folder`. */
function secretsOnDisk(folder: string, tokens: ReturnType<typeof sampleToken>[]): string[] {
  const bytes = readdirSync(folder)
    .map((name) => readFileSync(join(folder, name)).toString('latin1'))
    .join('\n');
  return secretsOf(tokens).filter((secret) => bytes.includes(secret));
}

test('after sealing plaintext, rekey says to VACUUM; after VACUUM the SQLite file holds none of the old secrets', async () => {
  const folder = tempFolder();
  try {
    const filename = join(folder.path, 'zohooauth.db');
    const plain = new SQLiteTokenStore({ filename });
    const tokens = Array.from({ length: 30 }, (_, index) => sampleToken(`user${index}@zylker.com`));
    for (const token of tokens) await plain.saveToken(token);
    await plain.close();
    const env = { CRM_TOKEN_KEYS: `k1:${K1}`, CRM_TOKEN_ACTIVE_KEY: 'k1' };

    const first = await runCli(['rekey', '--store', `sqlite:${filename}`], { env });
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('after: sealed values per key: k1 120');
    expect(first.stdout).toContain('plaintext values were sealed, but the storage may still hold the old bytes: run VACUUM');
    expect(first.stdout).toContain('Backups taken before this run still hold them in plaintext.');
    expectNoSecret(first.stdout + first.stderr, [...secretsOf(tokens), K1]);
    // The rows are sealed, yet the freed pages still hold old secrets: what the reminder is for.
    expect(secretsOnDisk(folder.path, tokens).length).toBeGreaterThan(0);

    const database = new Database(filename);
    database.exec('VACUUM');
    database.close();
    expect(secretsOnDisk(folder.path, tokens)).toEqual([]);

    // Nothing left in plaintext: no reminder.
    const second = await runCli(['rekey', '--store', `sqlite:${filename}`], { env });
    expect(second.code).toBe(0);
    expect(second.stdout).not.toContain('plaintext values were sealed');
    const store = encryptedStore(new SQLiteTokenStore({ filename }), { keys: { k1: K1 }, activeKeyId: 'k1', plaintext: 'refuse' });
    for (const token of tokens) expect((await store.findTokenById(token.id as string))?.toFields()).toEqual(token.toFields());
    await store.close?.();
  } finally {
    folder.remove();
  }
});

test('key ids: object member names are ids like any other, reserved ones and one key under two ids are usage errors', async () => {
  const folder = tempFolder();
  try {
    const { url, filename } = await seeded(folder.path);
    const before = (await new SQLiteTokenStore({ filename }).getTokens()).map((token) => token.toFields());
    const refused: Array<[string, string, RegExp]> = [
      [`k1:${K1},constructor:${K2}`, 'k1', /constructor cannot be a key id/],
      [`k1:${K1},__proto__:${K2}`, 'k1', /__proto__ cannot be a key id/],
      [`k1:${K1},prototype:${K2}`, 'k1', /prototype cannot be a key id/],
      [`k1:${K1},k2:${K1}`, 'k2', /keys k1 and k2 are the same key/],
      [`k1:${K1},k2:${Buffer.from(K1, 'base64').toString('base64url')}`, 'k2', /keys k1 and k2 are the same key/],
      [`k1:${K1},k1:${K2}`, 'k1', /names key k1 twice/],
    ];
    for (const [keys, active, message] of refused) {
      const result = await runCli(['rekey', '--store', url], { env: { CRM_TOKEN_KEYS: keys, CRM_TOKEN_ACTIVE_KEY: active } });
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stdout).toBe(''); // refused before the store is opened
      expectNoSecret(result.stdout + result.stderr, [K1, K2, Buffer.from(K1, 'base64').toString('base64url')]);
    }
    expect((await new SQLiteTokenStore({ filename }).getTokens()).map((token) => token.toFields())).toEqual(before);

    const named = await runCli(['rekey', '--store', url], {
      env: {
        CRM_TOKEN_KEYS: `k1:${K1},toString:${K2},hasOwnProperty:${randomBytes(32).toString('base64')}`,
        CRM_TOKEN_ACTIVE_KEY: 'toString',
      },
    });
    expect(named.stderr).toBe('');
    expect(named.code).toBe(0);
    expect(named.stdout).toContain('before: sealed values per key: k1 12, plaintext 4');
    expect(named.stdout).toContain('after: sealed values per key: toString 16');
  } finally {
    folder.remove();
  }
});
