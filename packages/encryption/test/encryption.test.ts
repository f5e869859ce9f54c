import { createSecretKey, randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { MemoryTokenStore, OAuthToken, TokenStoreError, UserSignature } from '@crm/core';
import { describeTokenStore } from '@crm/store-conformance/jest';
import {
  countKeys,
  encryptedConformanceOptions,
  encryptedStore,
  maxPlaintextBytes,
  rekey,
  sealedLength,
  secretsShownIn,
} from '../src/index';

const key = () => randomBytes(32).toString('base64');
const K1 = key();
const K2 = key();

function sampleToken(user = `ana-${randomBytes(3).toString('hex')}@zylker.com`): OAuthToken {
  const secret = (kind: string) => `1000.${kind}${randomBytes(16).toString('hex')}`;
  return new OAuthToken({
    userSignature: new UserSignature(user),
    clientId: '1000.CLIENT',
    clientSecret: secret('cs'),
    refreshToken: secret('rt'),
    accessToken: secret('at'),
    grantToken: secret('gt'),
    expiryTime: Date.now() + 3_600_000,
    apiDomain: 'https://www.zohoapis.com',
  });
}

const SECRET_FIELDS = ['clientSecret', 'accessToken', 'refreshToken', 'grantToken'] as const;

async function expectStoreError(work: () => unknown, code: string): Promise<TokenStoreError> {
  try {
    await work();
  } catch (error) {
    expect(TokenStoreError.is(error)).toBe(true);
    expect((error as TokenStoreError).code).toBe(code);
    return error as TokenStoreError;
  }
  throw new Error(`expected ${code}`);
}

// The whole suite on the reference store, wrapped (in one process: the memory store is not shared).
describeTokenStore(
  'encryptedStore(MemoryTokenStore)',
  encryptedConformanceOptions(
    { create: () => new MemoryTokenStore(), sharedAcrossProcesses: false },
    { keys: { k1: K1 }, activeKeyId: 'k1' },
  ) as never,
);

describe('sealing', () => {
  test('a token round-trips; the inner store holds only sealed values of the expected shape', async () => {
    const inner = new MemoryTokenStore();
    const store = encryptedStore(inner, { keys: { k1: K1 }, activeKeyId: 'k1' });
    const token = sampleToken();
    const expected = token.clone();
    await store.saveToken(token);
    expected.id = token.id;
    expect(token.toFields()).toEqual(expected.toFields());
    expect((await store.findTokenById(token.id as string))?.toFields()).toEqual(expected.toFields());
    const raw = (await inner.findTokenById(token.id as string)) as OAuthToken;
    for (const field of SECRET_FIELDS) {
      expect(raw[field]).toMatch(/^v1\.k1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/);
      expect(raw[field]).not.toContain(expected[field] as string);
    }
    expect(raw.clientId).toBe('1000.CLIENT');
    expect(raw.userSignature?.name).toBe(expected.userSignature?.name);
  });

  test('lookup fields are deterministic, the client secret is not; every find rule still works', async () => {
    const inner = new MemoryTokenStore();
    const store = encryptedStore(inner, { keys: { k1: K1 }, activeKeyId: 'k1' });
    const a = sampleToken();
    const b = new OAuthToken({ ...sampleToken().toFields(), clientSecret: a.clientSecret });
    await store.saveToken(a);
    await store.saveToken(b);
    const rawA = (await inner.findTokenById(a.id as string)) as OAuthToken;
    const rawB = (await inner.findTokenById(b.id as string)) as OAuthToken;
    expect(rawA.clientSecret).not.toBe(rawB.clientSecret); // equal secrets, different ciphertexts
    const again = encryptedStore(new MemoryTokenStore(), { keys: { k1: K1 }, activeKeyId: 'k1' });
    const copy = a.clone();
    copy.id = null;
    await again.saveToken(copy);
    const rawCopy = (await again.inner.findTokenById(String(copy.id))) as OAuthToken;
    for (const field of ['accessToken', 'refreshToken', 'grantToken'] as const) expect(rawCopy[field]).toBe(rawA[field]);

    expect((await store.findToken(new OAuthToken({ accessToken: a.accessToken })))?.id).toBe(a.id);
    const byRefresh = new OAuthToken({ refreshToken: a.refreshToken, clientId: 'x', clientSecret: 'y' });
    expect((await store.findToken(byRefresh))?.id).toBe(a.id);
    expect(byRefresh.clientSecret).toBe('y'); // the input's own fields are kept
    expect(byRefresh.grantToken).toBe(a.grantToken);
    expect((await store.findToken(new OAuthToken({ grantToken: b.grantToken, clientId: 'x', clientSecret: 'y' })))?.id).toBe(b.id);
    expect(await store.findToken(new OAuthToken({ accessToken: 'unknown' }))).toBeNull();
  });

  test('a tampered tag, ciphertext or IV is CORRUPT_DATA naming the token id and no secret', async () => {
    for (const part of [2, 3, 4]) {
      const inner = new MemoryTokenStore();
      const store = encryptedStore(inner, { keys: { k1: K1 }, activeKeyId: 'k1' });
      const token = sampleToken();
      await store.saveToken(token);
      const raw = (await inner.findTokenById(token.id as string)) as OAuthToken;
      const pieces = (raw.refreshToken as string).split('.');
      const bytes = Buffer.from(pieces[part] as string, 'base64url');
      bytes[0] = (bytes[0] as number) ^ 1;
      pieces[part] = bytes.toString('base64url');
      await inner.saveToken(new OAuthToken({ id: token.id, refreshToken: pieces.join('.') }));
      const error = await expectStoreError(() => store.findTokenById(token.id as string), 'CORRUPT_DATA');
      expect(error.message).toContain(token.id as string);
      expect(error.message).toContain('refreshToken');
      const shown = inspect(error, { showHidden: true, depth: 5 });
      for (const field of SECRET_FIELDS) expect(shown).not.toContain(token[field] as string);
      await expectStoreError(() => store.getTokens(), 'CORRUPT_DATA');
    }
  });

  test('a ciphertext moved to another field does not open', async () => {
    const inner = new MemoryTokenStore();
    const store = encryptedStore(inner, { keys: { k1: K1 }, activeKeyId: 'k1' });
    const token = sampleToken();
    await store.saveToken(token);
    const raw = (await inner.findTokenById(token.id as string)) as OAuthToken;
    await inner.saveToken(new OAuthToken({ id: token.id, accessToken: raw.refreshToken, clientSecret: raw.grantToken }));
    const error = await expectStoreError(() => store.findTokenById(token.id as string), 'CORRUPT_DATA');
    expect(error.message).toMatch(/(accessToken|clientSecret) of token/);
  });

  test('a value under an unknown key, or malformed, is CORRUPT_DATA; plaintext is read, or refused when asked', async () => {
    const inner = new MemoryTokenStore();
    const legacy = sampleToken();
    await inner.saveToken(legacy);
    const store = encryptedStore(inner, { keys: { k1: K1 }, activeKeyId: 'k1' });
    expect((await store.findTokenById(legacy.id as string))?.toFields()).toEqual(legacy.toFields());
    expect((await store.findToken(new OAuthToken({ accessToken: legacy.accessToken })))?.id).toBe(legacy.id);
    const strict = encryptedStore(inner, { keys: { k1: K1 }, activeKeyId: 'k1', plaintext: 'refuse' });
    expect((await expectStoreError(() => strict.findTokenById(legacy.id as string), 'CORRUPT_DATA')).message).toContain('not sealed');
    expect(await strict.findToken(new OAuthToken({ accessToken: legacy.accessToken }))).toBeNull();

    const other = encryptedStore(new MemoryTokenStore(), { keys: { k9: K2 }, activeKeyId: 'k9' });
    const token = sampleToken();
    await other.saveToken(token);
    const raw = (await other.inner.findTokenById(token.id as string)) as OAuthToken;
    await inner.saveToken(raw);
    expect((await expectStoreError(() => store.findTokenById(token.id as string), 'CORRUPT_DATA')).message).toContain('key k9');
    await inner.saveToken(new OAuthToken({ id: token.id, accessToken: 'v1.k1.broken' }));
    await expectStoreError(() => store.findTokenById(token.id as string), 'CORRUPT_DATA');
  });

  test('a value that looks sealed is never looked up as plaintext (no ciphertext oracle)', async () => {
    const inner = new MemoryTokenStore();
    const store = encryptedStore(inner, { keys: { k1: K1 }, activeKeyId: 'k1' });
    const token = sampleToken();
    await store.saveToken(token);
    const raw = (await inner.findTokenById(token.id as string)) as OAuthToken;
    expect(await store.findToken(new OAuthToken({ accessToken: raw.accessToken }))).toBeNull();
  });
});

describe('keys', () => {
  test('a missing, malformed or wrong-length key, a bad key id or an unknown activeKeyId is INVALID_ARGUMENT at once', async () => {
    const inner = new MemoryTokenStore();
    const cases: unknown[] = [
      { keys: {}, activeKeyId: 'k1' },
      { keys: { k1: '' }, activeKeyId: 'k1' },
      { keys: { k1: randomBytes(16).toString('base64') }, activeKeyId: 'k1' },
      { keys: { k1: randomBytes(33).toString('base64') }, activeKeyId: 'k1' },
      { keys: { k1: 'not base64!' }, activeKeyId: 'k1' },
      { keys: { k1: createSecretKey(randomBytes(16)) }, activeKeyId: 'k1' },
      { keys: { 'k.1': K1 }, activeKeyId: 'k.1' },
      { keys: { k1: K1 }, activeKeyId: 'k2' },
      { keys: { k1: K1 }, activeKeyId: 'k1', plaintext: 'maybe' },
      undefined,
    ];
    for (const options of cases) {
      let error: unknown;
      try {
        encryptedStore(inner, options as never);
      } catch (caught) {
        error = caught;
      }
      expect(TokenStoreError.is(error) && error.code).toBe('INVALID_ARGUMENT');
      expect(String((error as Error).message)).not.toContain(K1);
    }
  });

  test('a KeyObject and base64url keys work, and open what the base64 form sealed', async () => {
    const bytes = randomBytes(32);
    const inner = new MemoryTokenStore();
    const a = encryptedStore(inner, { keys: { k1: bytes.toString('base64') }, activeKeyId: 'k1' });
    const token = sampleToken();
    await a.saveToken(token);
    for (const form of [createSecretKey(bytes), bytes.toString('base64url')]) {
      const b = encryptedStore(inner, { keys: { k1: form }, activeKeyId: 'k1' });
      expect((await b.findToken(new OAuthToken({ accessToken: token.accessToken })))?.id).toBe(token.id);
    }
  });

  test('sealed lengths: what fits a varchar(255) column', () => {
    expect(sealedLength(0, 'k1')).toBe(46);
    const limit = maxPlaintextBytes(255, 'k1');
    expect(sealedLength(limit, 'k1')).toBeLessThanOrEqual(255);
    expect(sealedLength(limit + 1, 'k1')).toBeGreaterThan(255);
    expect(limit).toBe(156);
  });
});

describe('rotation', () => {
  test('with two keys nothing goes missing: old values are found and updated in place, new ones use the active key', async () => {
    const inner = new MemoryTokenStore();
    const old = encryptedStore(inner, { keys: { k1: K1 }, activeKeyId: 'k1' });
    const tokens = [sampleToken(), sampleToken()];
    for (const token of tokens) await old.saveToken(token);
    const rotated = encryptedStore(inner, { keys: { k1: K1, k2: K2 }, activeKeyId: 'k2' });

    const byAccess = await rotated.findToken(new OAuthToken({ accessToken: tokens[0]!.accessToken }));
    expect(byAccess?.id).toBe(tokens[0]!.id);
    // A save by refresh token (no id, no user name) updates the token stored under k1 instead of inserting.
    const update = new OAuthToken({ refreshToken: tokens[1]!.refreshToken, clientId: 'c', clientSecret: 'new-secret', expiryTime: 42 });
    await rotated.saveToken(update);
    expect(update.id).toBe(tokens[1]!.id);
    expect((await inner.getTokens()).length).toBe(2);
    const raw = (await inner.findTokenById(tokens[1]!.id as string)) as OAuthToken;
    expect(raw.clientSecret).toMatch(/^v1\.k2\./);
    expect(raw.accessToken).toMatch(/^v1\.k1\./); // absent fields keep their stored values
    expect((await rotated.findTokenById(tokens[1]!.id as string))?.clientSecret).toBe('new-secret');
    // The store without the new key cannot open the new value, and says which key it lacks.
    await expectStoreError(() => old.findTokenById(tokens[1]!.id as string), 'CORRUPT_DATA');
  });

  test('rekey moves every value to the active key, reports counts per key, is idempotent and resumable', async () => {
    const inner = new MemoryTokenStore();
    const legacy = sampleToken();
    await inner.saveToken(legacy); // stored before encryption
    const old = encryptedStore(inner, { keys: { k1: K1 }, activeKeyId: 'k1' });
    const tokens = [sampleToken(), sampleToken(), sampleToken()];
    for (const token of tokens) await old.saveToken(token);
    const onlySecret = new OAuthToken({ id: tokens[0]!.id, clientSecret: 'only-this', accessToken: tokens[0]!.accessToken });
    const rotated = encryptedStore(inner, { keys: { k1: K1, k2: K2 }, activeKeyId: 'k2' });
    await rotated.saveToken(onlySecret); // its refresh and grant tokens stay under k1
    expect(countKeys(await inner.getTokens())).toEqual({ plaintext: 4, k1: 10, k2: 2 });

    // Stopped after the first token, then run again: it carries on.
    const controller = new AbortController();
    const first = await rekey(inner, {
      keys: { k1: K1, k2: K2 },
      activeKeyId: 'k2',
      signal: controller.signal,
      onProgress: () => controller.abort(),
    });
    expect(first.stopped).toBe(true);
    expect(first.resealed).toBe(1);
    const progress: string[] = [];
    const second = await rekey(rotated, {
      onProgress: (step) => {
        progress.push(`${step.done}/${step.total} ${step.outcome}`);
      },
    });
    expect(second.before).toEqual(first.after);
    expect(second.after).toEqual({ k2: 16 });
    expect(second.resealed + second.current).toBe(4);
    expect(second.current).toBe(1);
    expect(progress).toHaveLength(4);
    const third = await rekey(rotated);
    expect(third).toMatchObject({ resealed: 0, current: 4, before: { k2: 16 }, after: { k2: 16 }, failed: [] });

    const onlyK2 = encryptedStore(inner, { keys: { k2: K2 }, activeKeyId: 'k2', plaintext: 'refuse' });
    const expected = [legacy, ...tokens].map((token) => token.toFields());
    expected[1]!.clientSecret = 'only-this';
    const read = await Promise.all([legacy, ...tokens].map((token) => onlyK2.findTokenById(token.id as string)));
    expect(read.map((token) => token?.toFields())).toEqual(expected);
  });

  test('rekey reports a token it cannot open by id, and goes on', async () => {
    const inner = new MemoryTokenStore();
    const store = encryptedStore(inner, { keys: { k1: K1 }, activeKeyId: 'k1' });
    const [good, bad] = [sampleToken(), sampleToken()];
    await store.saveToken(good);
    await store.saveToken(bad);
    await inner.saveToken(new OAuthToken({ id: bad.id, accessToken: 'v1.k1.AAAA.AAAA.AAAA' }));
    const report = await rekey(inner, { keys: { k1: K1, k2: K2 }, activeKeyId: 'k2' });
    expect(report.resealed).toBe(1);
    expect(report.failed.map((failure) => failure.tokenId)).toEqual([bad.id]);
    expect(JSON.stringify(report)).not.toContain(bad.refreshToken as string);
  });
});

test('secretsShownIn finds a secret as it is, in base64, base64url and hex, and names it without its value', () => {
  const secret = '1000.at0123456789abcdef0123456789abcdef';
  const bytes = Buffer.from(secret);
  expect(secretsShownIn('nothing here', [secret])).toEqual([]);
  expect(secretsShownIn(`x${secret}x`, ['other', secret])).toEqual(['secret 1 as it is']);
  expect(secretsShownIn(bytes.toString('base64'), [secret])).toContain('secret 0 as base64');
  expect(secretsShownIn(bytes.toString('hex').toUpperCase(), [secret])).toEqual(['secret 0 as upper-case hex']);
  expect(secretsShownIn(`a${bytes.toString('base64url')}`, [secret]).join()).not.toContain(secret);
});
