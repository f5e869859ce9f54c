import { createSecretKey, hkdfSync, randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { MemoryTokenStore, OAuthToken, refreshLockKey, TokenStoreError, UserSignature } from '@crm/core';
import { countKeys, encryptedStore, type KeyInput, rekey } from '../src/index';

const key = () => randomBytes(32).toString('base64');

async function storeError(work: () => unknown): Promise<TokenStoreError> {
  try {
    await work();
  } catch (error) {
    if (TokenStoreError.is(error)) return error;
    throw error;
  }
  throw new Error('expected a TokenStoreError');
}

/** Every way a subkey of `keyBase64` could be spelled in a log line, under either derivation label. */
function subkeySpellings(keyBase64: string, keyId: string): string[] {
  const bytes = Buffer.from(keyBase64, 'base64');
  const spellings: string[] = [bytes.toString('hex'), keyBase64, bytes.toString('base64url')];
  for (const purpose of ['aes-256-gcm', 'synthetic-iv']) {
    for (const info of [`crm-encryption v1 ${purpose}`, `crm-encryption v1 ${purpose}\u0000${keyId}`]) {
      const subkey = Buffer.from(hkdfSync('sha256', bytes, Buffer.alloc(0), info, 32));
      spellings.push(subkey.toString('hex'), subkey.toString('base64'), subkey.toString('base64url'));
      spellings.push(subkey.toString('hex').match(/../g)!.join(' ')); // as util.inspect prints a Buffer
      spellings.push(JSON.stringify([...subkey])); // as JSON.stringify prints a Buffer's data
    }
  }
  return spellings;
}

const parts = (sealed: string) => sealed.split('.') as [string, string, string, string, string];

describe('key material never shows', () => {
  test('util.inspect, console-style formatting and JSON.stringify of the store show key ids, never a key or subkey', async () => {
    const k1 = key();
    const k2 = key();
    const store = encryptedStore(new MemoryTokenStore(), { keys: { k1, k2 }, activeKeyId: 'k2' });
    await store.saveToken(new OAuthToken({ accessToken: 'AT-shown', refreshToken: 'RT-shown' }));
    const shown = [
      inspect(store, { depth: 10, showHidden: true }),
      inspect({ store }, { depth: 10 }),
      JSON.stringify(store),
      JSON.stringify({ store }),
      JSON.stringify((store as unknown as Record<string, unknown>).keyring ?? null),
      inspect((store as unknown as Record<string, unknown>).keyring, { depth: 10, showHidden: true }),
    ];
    for (const text of shown) {
      for (const spelling of [...subkeySpellings(k1, 'k1'), ...subkeySpellings(k2, 'k2')]) expect(text).not.toContain(spelling);
      expect(text).not.toMatch(/<Buffer/);
    }
    expect(shown[0]).toContain("activeKeyId: 'k2'");
    expect(shown[0]).toContain("keyIds: ['k2', 'k1']");
    expect(JSON.parse(shown[2] as string)).toEqual({
      store: 'EncryptedTokenStore',
      inner: expect.any(String),
      activeKeyId: 'k2',
      keyIds: ['k2', 'k1'],
      plaintext: 'read',
    });
    // No public property leads to the keys.
    expect(Object.keys(store)).not.toContain('keyring');
    expect((store as unknown as Record<string, unknown>).keyring).toBeUndefined();
  });
});

describe('one key, one id', () => {
  test('two ids with the same key bytes are INVALID_ARGUMENT, in any spelling, naming the ids and no key', async () => {
    const k = key();
    const asUrl = Buffer.from(k, 'base64').toString('base64url');
    const asObject = createSecretKey(Buffer.from(k, 'base64'));
    const keyLists: Array<Record<string, KeyInput>> = [
      { a: k, b: k },
      { a: k, b: asUrl },
      { a: asObject, b: k },
      { a: key(), b: k, c: asObject },
    ];
    for (const keys of keyLists) {
      const error = await storeError(() => encryptedStore(new MemoryTokenStore(), { keys, activeKeyId: 'b' }));
      expect(error.code).toBe('INVALID_ARGUMENT');
      expect(error.message).toMatch(/keys [abc] and [abc] are the same key/);
      expect(error.message).not.toContain(k);
      expect(error.message).not.toContain(asUrl);
    }
  });

  test('the key id is part of the derivation: the same value under the same bytes and another id shares no IV or ciphertext', async () => {
    const k = key();
    const innerA = new MemoryTokenStore();
    const innerB = new MemoryTokenStore();
    await encryptedStore(innerA, { keys: { a: k }, activeKeyId: 'a' }).saveToken(new OAuthToken({ accessToken: 'AT-same' }));
    await encryptedStore(innerB, { keys: { b: k }, activeKeyId: 'b' }).saveToken(new OAuthToken({ accessToken: 'AT-same' }));
    const [sealedA] = (await innerA.getTokens()).map((token) => token.accessToken as string);
    const [sealedB] = (await innerB.getTokens()).map((token) => token.accessToken as string);
    expect(parts(sealedA as string)[2]).not.toBe(parts(sealedB as string)[2]);
    expect(parts(sealedA as string)[3]).not.toBe(parts(sealedB as string)[3]);
    // Relabelling a value with the other id still does not open.
    const relabelled = ['v1', 'b', ...parts(sealedA as string).slice(2)].join('.');
    const [stored] = await innerB.getTokens();
    await innerB.saveToken(new OAuthToken({ id: stored!.id as string, accessToken: relabelled }));
    const error = await storeError(() => encryptedStore(innerB, { keys: { b: k }, activeKeyId: 'b' }).getTokens());
    expect(error.code).toBe('CORRUPT_DATA');
  });
});

describe('key ids that name object members', () => {
  test('__proto__, constructor and prototype are refused as ids; toString and hasOwnProperty work', async () => {
    for (const id of ['__proto__', 'constructor', 'prototype']) {
      const keys = JSON.parse(`{${JSON.stringify(id)}: ${JSON.stringify(key())}}`) as Record<string, string>;
      expect(Object.keys(keys)).toEqual([id]);
      const error = await storeError(() => encryptedStore(new MemoryTokenStore(), { keys, activeKeyId: id }));
      expect(error.code).toBe('INVALID_ARGUMENT');
      expect(error.message).toContain(`${id} cannot be a key id`);
    }
    const inner = new MemoryTokenStore();
    const toStringKey = key();
    const store = encryptedStore(inner, { keys: { toString: toStringKey, hasOwnProperty: key() }, activeKeyId: 'toString' });
    const token = new OAuthToken({ accessToken: 'AT-named', refreshToken: 'RT-named' });
    await store.saveToken(token);
    expect((await store.findToken(new OAuthToken({ accessToken: 'AT-named' })))?.refreshToken).toBe('RT-named');
    expect(countKeys(await inner.getTokens())).toEqual({ toString: 2 });
  });

  test('countKeys counts any id read from storage, __proto__ and constructor included', () => {
    const sealed = (id: string) => `v1.${id}.AAAAAAAAAAAAAAAA.AA.AAAAAAAAAAAAAAAAAAAAAA`;
    const tokens = [
      new OAuthToken({ accessToken: sealed('__proto__'), refreshToken: sealed('constructor') }),
      new OAuthToken({ accessToken: sealed('constructor'), grantToken: sealed('toString'), clientSecret: 'plain' }),
    ];
    const counts = countKeys(tokens);
    expect(Object.entries(counts).sort()).toEqual([
      ['__proto__', 1],
      ['constructor', 2],
      ['plaintext', 1],
      ['toString', 1],
    ]);
    expect(JSON.parse(JSON.stringify(counts))).toEqual({ ['__proto__']: 1, constructor: 2, plaintext: 1, toString: 1 });
  });
});

describe('sealed values are canonical', () => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const flipLowBit = (text: string) => text.slice(0, -1) + alphabet[alphabet.indexOf(text.at(-1) as string) ^ 1];

  test('another spelling of the same bytes (unused low bits, a dangling character) is CORRUPT_DATA, not a value that misses lookups', async () => {
    const inner = new MemoryTokenStore();
    const store = encryptedStore(inner, { keys: { k: key() }, activeKeyId: 'k' });
    const token = new OAuthToken({ accessToken: 'AT-1' });
    await store.saveToken(token);
    const id = token.id as string;
    const original = (await inner.findTokenById(id))?.accessToken as string;
    const [, keyId, iv, ciphertext, tag] = parts(original);
    expect(Buffer.from(`${iv}A`, 'base64url').equals(Buffer.from(iv, 'base64url'))).toBe(true);
    // 'AT-1' is 4 bytes (6 characters, 4 unused bits) and the tag 16 bytes (22 characters, 4 unused bits).
    expect(Buffer.from(flipLowBit(tag), 'base64url').equals(Buffer.from(tag, 'base64url'))).toBe(true);
    const variants = [
      ['v1', keyId, iv, ciphertext, flipLowBit(tag)],
      ['v1', keyId, iv, flipLowBit(ciphertext), tag],
      ['v1', keyId, `${iv}A`, ciphertext, tag], // 17 characters: Node drops the dangling one
      ['v1', keyId, iv, ciphertext, `${tag}A`],
    ].map((variant) => variant.join('.'));
    for (const variant of variants) {
      await inner.saveToken(new OAuthToken({ id, accessToken: variant }));
      const error = await storeError(() => store.findTokenById(id));
      expect(error.code).toBe('CORRUPT_DATA');
      expect(error.message).toContain(`the accessToken of token ${id} is not a well-formed sealed value`);
    }
    await inner.saveToken(new OAuthToken({ id, accessToken: original }));
    expect((await store.findToken(new OAuthToken({ accessToken: 'AT-1' })))?.id).toBe(id);
  });
});

describe('rekey and its neighbours', () => {
  test('findToken finds a token that a rekey moves to the active key between its probes', async () => {
    const k2024 = key();
    const k2025 = key();
    const shared = new MemoryTokenStore();
    await encryptedStore(shared, { keys: { k2024 }, activeKeyId: 'k2024' }).saveToken(new OAuthToken({ accessToken: 'AT-bob' }));
    // The application's view of the same storage; right after its first probe, a rekey elsewhere runs.
    let probes = 0;
    const view = Object.create(shared) as MemoryTokenStore;
    view.findToken = async (token: OAuthToken) => {
      const found = await shared.findToken(token);
      if (++probes === 1) await rekey(shared, { keys: { k2024, k2025 }, activeKeyId: 'k2025' });
      return found;
    };
    const app = encryptedStore(view, { keys: { k2024, k2025 }, activeKeyId: 'k2025' });
    const found = await app.findToken(new OAuthToken({ accessToken: 'AT-bob' }));
    expect(probes).toBeGreaterThan(2);
    expect(found?.accessToken).toBe('AT-bob');
    expect(countKeys(await shared.getTokens())).toEqual({ k2025: 1 });
  });

  test('a token deleted between rekey re-reading it and saving it stays deleted and counts as gone', async () => {
    const old = key();
    const neu = key();
    const shared = new MemoryTokenStore();
    const before = encryptedStore(shared, { keys: { old }, activeKeyId: 'old' });
    const alice = new OAuthToken({
      userSignature: new UserSignature('alice@example.com'),
      clientId: 'cid',
      clientSecret: 'CS',
      accessToken: 'AT-alice',
      refreshToken: 'RT-alice',
    });
    const bob = new OAuthToken({ accessToken: 'AT-bob', refreshToken: 'RT-bob', expiryTime: Date.now() + 60_000 });
    await before.saveToken(alice);
    await before.saveToken(bob);
    const view = Object.create(shared) as MemoryTokenStore;
    view.findTokenById = async (id: string) => {
      const found = await shared.findTokenById(id);
      if (id === alice.id) await shared.deleteToken(id); // a delete that does not take the lock
      return found;
    };
    const report = await rekey(view, { keys: { old, neu }, activeKeyId: 'neu' });
    expect(report).toMatchObject({ total: 2, resealed: 1, gone: 1, failed: [], after: { neu: 2 } });
    const left = await shared.getTokens();
    expect(left.map((token) => token.id)).toEqual([bob.id]);
  });

  test('rekey takes the lock TokenManager takes, refreshLockKey(id), also for ids too long for a plain key', async () => {
    const old = key();
    const neu = key();
    const shared = new MemoryTokenStore();
    const longId = 'x'.repeat(600);
    await encryptedStore(shared, { keys: { old }, activeKeyId: 'old' }).saveToken(new OAuthToken({ id: longId, accessToken: 'AT-long' }));
    const taken: string[] = [];
    const view = Object.create(shared) as MemoryTokenStore;
    view.withLock = (lockKey, work, options) => {
      taken.push(lockKey);
      return shared.withLock(lockKey, work, options);
    };
    const report = await rekey(view, { keys: { old, neu }, activeKeyId: 'neu' });
    expect(report).toMatchObject({ resealed: 1, failed: [], after: { neu: 1 } });
    expect(taken).toEqual([refreshLockKey(longId)]);
    expect(taken[0]).toMatch(/^refresh:sha256:[0-9a-f]{64}$/);
    expect((await encryptedStore(shared, { keys: { neu }, activeKeyId: 'neu' }).findTokenById(longId))?.accessToken).toBe('AT-long');
  });
});
