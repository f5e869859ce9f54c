import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { encryptedStore } from '@crm/encryption';
import { SQLiteTokenStore } from '@crm/store-sqlite';
import { expectNoSecret, runCli, sampleToken, secretsOf, tempFolder } from './helpers';

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
