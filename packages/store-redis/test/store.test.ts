import { createHash, randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { OAuthToken, TokenStoreError, UserSignature } from '@crm/core';
import { freePort } from '@crm/test-services/process';
import { startThrowawayRedis } from '@crm/test-services/redis';
import { Redis } from 'ioredis';
import { escapeGlob, RedisTokenStore } from '../src/index.js';
import { randomPrefix, redisUrl, removePrefix } from './conformance-options.js';

let url: string;
let admin: Redis;
const prefixes: string[] = [];

beforeAll(async () => {
  url = await redisUrl();
  admin = new Redis(url);
});

afterAll(async () => {
  for (const prefix of prefixes) await removePrefix(admin, prefix);
  await admin.quit();
});

function openStore(prefix = randomPrefix()): RedisTokenStore {
  prefixes.push(prefix);
  return new RedisTokenStore({ url, prefix });
}

async function keysOf(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await admin.scan(cursor, 'MATCH', `${escapeGlob(`{${prefix}}:`)}*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...found);
  } while (cursor !== '0');
  return keys.sort();
}

const userToken = (name: string, fields: ConstructorParameters<typeof OAuthToken>[0] = {}) =>
  new OAuthToken({
    userSignature: new UserSignature(name),
    clientId: 'client',
    clientSecret: 'secret',
    refreshToken: `r-${name}`,
    ...fields,
  });

describe('options', () => {
  const hostile = ['a b', "it's", 'a"b', 'tokens; FLUSHALL', 'a{b}', '{a}', 'a*', 'a?', 'a[b]', 'a\\b', 'tab\tx', 'ä', '', 'x'.repeat(101)];

  test.each(hostile)('prefix %j is rejected with INVALID_ARGUMENT before anything is sent', (prefix) => {
    expect(() => new RedisTokenStore({ url, prefix })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', operation: 'open' }));
  });

  test('other options are checked', () => {
    const invalid = (message: RegExp) =>
      expect.objectContaining({ code: 'INVALID_ARGUMENT', operation: 'open', message: expect.stringMatching(message) });
    expect(() => new RedisTokenStore({ url, operationTimeoutMs: 0 })).toThrow(invalid(/operationTimeoutMs/));
    expect(() => new RedisTokenStore({ url, operationTimeoutMs: 1.5 })).toThrow(invalid(/operationTimeoutMs/));
    expect(() => new RedisTokenStore({ url, maxSaveAttempts: 0 })).toThrow(invalid(/maxSaveAttempts/));
    expect(() => new RedisTokenStore({ url, maxSaveAttempts: '3' as never })).toThrow(invalid(/maxSaveAttempts/));
    expect(() => new RedisTokenStore({} as never)).toThrow(invalid(/client or a url/));
    expect(() => new RedisTokenStore(null as never)).toThrow(invalid(/object/));
    expect(() => new RedisTokenStore({ url, client: new Object() } as never)).toThrow(invalid(/client or a url/));
    expect(() => new RedisTokenStore({ client: {} } as never)).toThrow(invalid(/ioredis/));
    expect(() => new RedisTokenStore({ client: admin, redisOptions: {} } as never)).toThrow(invalid(/redisOptions/));
    // Unknown names are refused rather than ignored: a typo would otherwise silently use a default.
    expect(() => new RedisTokenStore({ url, prefx: 'a' } as never)).toThrow(invalid(/unknown option prefx/));
    expect(() => new RedisTokenStore({ url, operationTimeout: 10 } as never)).toThrow(invalid(/unknown option operationTimeout\b/));
  });

  test('the url must be redis:// or rediss://, and the message never repeats it (it may hold a password)', () => {
    for (const bad of ['postgres://u:hunter2@host/db', 'hunter2', 42]) {
      const error = (() => {
        try {
          new RedisTokenStore({ url: bad as string });
        } catch (caught) {
          return caught as TokenStoreError;
        }
      })();
      expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', operation: 'open' });
      expect(error?.message).toMatch(/redis:\/\/ or rediss:\/\//);
      expect(error?.message).not.toContain('hunter2');
    }
  });

  test('defaults: prefix crm-tokens, a 5000 ms bound per round trip, 5 save attempts', async () => {
    const store = new RedisTokenStore({ url });
    expect(store).toMatchObject({ prefix: 'crm-tokens', operationTimeoutMs: 5000, maxSaveAttempts: 5 });
    await store.close();
  });

  test('escapeGlob makes every glob character literal', async () => {
    expect(escapeGlob('a*b?c[d]e\\f')).toBe('a\\*b\\?c\\[d\\]e\\\\f');
    const literal = `glob-${randomPrefix()}-*?[x]\\`;
    await admin.set(literal, '1');
    await admin.set(`${literal.slice(0, -6)}zzzzzz`, '1');
    const [, found] = await admin.scan('0', 'MATCH', escapeGlob(literal), 'COUNT', 100000);
    expect(found).toEqual([literal]);
    await admin.del(literal, `${literal.slice(0, -6)}zzzzzz`);
  });
});

describe('key layout', () => {
  test('a hash per token under Zoho column names, digest index keys, all under {prefix}:', async () => {
    const store = openStore();
    const secretAccess = 'access-token-that-must-not-appear-in-key-names';
    const token = userToken('layout@example.com:1', { accessToken: secretAccess, grantToken: 'grant-1', expiryTime: 1700000000000 });
    await store.saveToken(token);
    const keys = await keysOf(store.prefix);
    expect(keys.every((key) => key.startsWith(`{${store.prefix}}:`))).toBe(true);
    expect(keys.some((key) => key.includes(secretAccess) || key.includes('layout@example.com'))).toBe(false);
    const base = `{${store.prefix}}:`;
    expect(keys.filter((key) => !key.includes(':idx:'))).toEqual([`${base}ids`, `${base}seq`, `${base}token:${token.id}`]);
    const indexKeys = keys.filter((key) => key.includes(':idx:'));
    for (const column of ['user_name', 'access_token', 'grant_token', 'refresh_token']) {
      expect(indexKeys.filter((key) => new RegExp(`^\\{${store.prefix}\\}:idx:${column}:[0-9a-f]{40}$`).test(key))).toHaveLength(1);
    }
    expect(indexKeys).toHaveLength(4);
    expect(await admin.hgetall(`{${store.prefix}}:token:${token.id}`)).toEqual({
      id: token.id,
      user_name: 'layout@example.com:1',
      client_id: 'client',
      client_secret: 'secret',
      refresh_token: 'r-layout@example.com:1',
      access_token: secretAccess,
      grant_token: 'grant-1',
      expiry_time: '1700000000000',
    });
    await store.close();
  });

  test('changing a token moves its index entries; deleting it leaves no index key behind', async () => {
    const store = openStore();
    const token = userToken('moves@example.com:1', { accessToken: 'a-old', grantToken: 'g-old' });
    await store.saveToken(token);
    const indexCount = async () => (await keysOf(store.prefix)).filter((key) => key.includes(':idx:')).length;
    expect(await indexCount()).toBe(4);

    await store.saveToken(
      new OAuthToken({
        id: token.id,
        userSignature: new UserSignature('renamed@example.com:1'),
        accessToken: 'a-new',
        refreshToken: 'r-new',
        grantToken: 'g-new',
      }),
    );
    expect(await indexCount()).toBe(4);
    expect(await store.findToken(new OAuthToken({ userSignature: new UserSignature('moves@example.com:1') }))).toBeNull();
    expect(await store.findToken(new OAuthToken({ accessToken: 'a-old' }))).toBeNull();
    expect(await store.findToken(new OAuthToken({ clientId: 'client', clientSecret: 'secret', grantToken: 'g-old' }))).toBeNull();
    expect(
      await store.findToken(new OAuthToken({ clientId: 'client', clientSecret: 'secret', refreshToken: 'r-moves@example.com:1' })),
    ).toBeNull();
    expect((await store.findToken(new OAuthToken({ accessToken: 'a-new' })))?.id).toBe(token.id);
    expect((await store.findToken(new OAuthToken({ clientId: 'client', clientSecret: 'secret', refreshToken: 'r-new' })))?.id).toBe(
      token.id,
    );
    // The old user name is free again.
    await store.saveToken(userToken('moves@example.com:1', { accessToken: 'a-second' }));

    await store.deleteTokens();
    expect(await keysOf(store.prefix)).toEqual([]);
    await store.close();
  });

  test('two tokens sharing an access token: the index holds both, lookups return the first saved, deletes keep the other', async () => {
    const store = openStore();
    const first = new OAuthToken({ userSignature: new UserSignature('first@example.com:1'), accessToken: 'shared-access' });
    const second = new OAuthToken({ userSignature: new UserSignature('second@example.com:1'), accessToken: 'shared-access' });
    await store.saveToken(first);
    await store.saveToken(second);
    expect((await store.findToken(new OAuthToken({ accessToken: 'shared-access' })))?.id).toBe(first.id);
    await store.deleteToken(first.id as string);
    expect((await store.findToken(new OAuthToken({ accessToken: 'shared-access' })))?.id).toBe(second.id);
    await store.close();
  });
});

describe('deleteTokens', () => {
  test('removes only keys under its own prefix', async () => {
    const base = randomPrefix();
    const store = openStore(base);
    const longer = openStore(`${base}x`);
    const nested = openStore(`${base}:inner`);
    for (const each of [store, longer, nested]) await each.saveToken(userToken(`someone@${each.prefix}`, { accessToken: 'a' }));
    const strangers = [base, `{${base}}`, `{${base}}x:token:1`, `${base}:token:1`, `x{${base}}:ids`];
    for (const key of strangers) await admin.set(key, 'not ours');
    // Ids may hold glob characters; they must not widen what is deleted.
    await store.saveToken(new OAuthToken({ id: '*', accessToken: 'star' }));
    await store.saveToken(new OAuthToken({ id: '[a-z]?\\', accessToken: 'glob' }));

    await store.deleteTokens();
    expect(await keysOf(base)).toEqual([]);
    expect(await store.getTokens()).toEqual([]);
    expect(await longer.getTokens()).toHaveLength(1);
    expect(await nested.getTokens()).toHaveLength(1);
    for (const key of strangers) expect(await admin.get(key)).toBe('not ours');
    await admin.del(...strangers);
    for (const each of [store, longer, nested]) await each.close();
  });

  test('saves running during deleteTokens leave a consistent store: every hash listed, indexed and findable', async () => {
    const store = openStore();
    const saver = new RedisTokenStore({ url, prefix: store.prefix });
    for (let i = 0; i < 1000; i += 250) {
      await Promise.all(
        Array.from({ length: 250 }, (_, j) => store.saveToken(userToken(`old${i + j}@example.com:1`, { accessToken: `old${i + j}` }))),
      );
    }
    const saves = Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        saver.saveToken(userToken(i % 2 ? `old${i}@example.com:1` : `new${i}@example.com:1`, { accessToken: `during${i}` })),
      ),
    );
    await Promise.all([store.deleteTokens(), saves]);
    const keys = await keysOf(store.prefix);
    const hashIds = keys.filter((key) => key.includes(':token:')).map((key) => key.slice(key.indexOf(':token:') + 7));
    const listed = await store.getTokens();
    expect(listed.map((token) => token.id).sort()).toEqual(hashIds.sort());
    for (const token of listed) {
      const found = await store.findToken(new OAuthToken({ userSignature: new UserSignature(token.userName as string) }));
      expect(found?.id).toBe(token.id);
      expect((await store.findToken(new OAuthToken({ accessToken: token.accessToken as string })))?.id).toBe(token.id);
    }
    // No index entry points at a token that is gone.
    for (const key of keys.filter((each) => each.includes(':idx:'))) {
      for (const id of await admin.zrange(key, 0, -1)) expect(hashIds).toContain(id);
    }
    await saver.close();
    await store.close();
  });

  test('many tokens: all gone, in batches', async () => {
    const store = openStore();
    for (let i = 0; i < 1200; i += 100) {
      await Promise.all(
        Array.from({ length: 100 }, (_, j) => store.saveToken(userToken(`bulk${i + j}@example.com:1`, { accessToken: `a${i + j}` }))),
      );
    }
    expect(await store.getTokens()).toHaveLength(1200);
    await store.deleteTokens();
    expect(await keysOf(store.prefix)).toEqual([]);
    await store.close();
  });
});

describe('values', () => {
  test('64 KB tokens, Unicode, quotes, Lua and glob text round-trip byte-exact and are found', async () => {
    const store = openStore();
    const values = [
      'x'.repeat(65536),
      'ünïcödé 🙂 漢字 \u0001 control',
      `'"; FLUSHALL; --`,
      "]] redis.call('FLUSHALL') --[[",
      '{other}:token:*',
      '\\*?[]',
      ' leading and trailing ',
      'line\r\nbreak',
    ];
    for (const [i, value] of values.entries()) {
      const token = new OAuthToken({
        userSignature: new UserSignature(`${value}-user`),
        clientId: value,
        clientSecret: value,
        refreshToken: `${value}-r`,
        accessToken: `${value}-a${i}`,
        grantToken: `${value}-g`,
        redirectUrl: value,
        apiDomain: value,
        expiryTime: -1,
      });
      await store.saveToken(token);
      const byId = await store.findTokenById(token.id as string);
      expect(byId?.toFields()).toEqual(token.toFields());
      const byAccess = await store.findToken(new OAuthToken({ accessToken: `${value}-a${i}` }));
      expect(byAccess?.toFields()).toEqual(token.toFields());
      const byGrant = await store.findToken(new OAuthToken({ clientId: value, clientSecret: value, grantToken: `${value}-g` }));
      expect(byGrant?.id).toBe(token.id);
    }
    expect(await store.getTokens()).toHaveLength(values.length);
    expect(await admin.ping()).toBe('PONG');
    await store.close();
  });

  test('a stored hash with a bad expiry_time is CORRUPT_DATA, never a wrong token', async () => {
    const store = openStore();
    const token = userToken('corrupt@example.com:1', { accessToken: 'a' });
    await store.saveToken(token);
    await admin.hset(`{${store.prefix}}:token:${token.id}`, 'expiry_time', 'soon');
    await expect(store.findTokenById(token.id as string)).rejects.toMatchObject({ code: 'CORRUPT_DATA', operation: 'findTokenById' });
    await expect(store.findToken(new OAuthToken({ userSignature: new UserSignature('corrupt@example.com:1') }))).rejects.toMatchObject({
      code: 'CORRUPT_DATA',
    });
    await store.close();
  });

  test('a key of the wrong type is BACKEND_FAILURE (WRONGTYPE), with a cause that names the error and holds no value', async () => {
    const store = openStore();
    await admin.set(`{${store.prefix}}:token:occupied`, 'plain string');
    const token = secretToken('wrongtype');
    token.id = 'occupied';
    const error = await store.saveToken(token).catch((caught) => caught);
    expect(TokenStoreError.is(error)).toBe(true);
    expect(error).toMatchObject({ code: 'BACKEND_FAILURE', operation: 'saveToken' });
    expect(error.cause).toBeInstanceOf(Error);
    expect(error.cause.message).toMatch(/^WRONGTYPE/);
    expectNoSecrets(error, token);
    await store.close();
  });

  test('a save or a delete that meets an index key of the wrong type fails before it changes anything', async () => {
    const store = openStore();
    const token = secretToken('half');
    await store.saveToken(token);
    const before = await keysOf(store.prefix);
    const hashBefore = await admin.hgetall(`{${store.prefix}}:token:${token.id}`);
    // Someone else's plain string where the index entry of the new access token would go.
    const newAccess = `access-${randomBytes(12).toString('hex')}`;
    const digest = (value: string) => createHash('sha1').update(value).digest('hex');
    await admin.set(`{${store.prefix}}:idx:access_token:${digest(newAccess)}`, 'plain string');
    const refresh = new OAuthToken({ id: token.id, accessToken: newAccess });
    expect(await store.saveToken(refresh).catch((caught) => caught)).toMatchObject({ code: 'BACKEND_FAILURE' });
    expect(await admin.hgetall(`{${store.prefix}}:token:${token.id}`)).toEqual(hashBefore);
    expect((await store.findToken(new OAuthToken({ accessToken: token.accessToken })))?.id).toBe(token.id);
    // The stored access token's own index key taken over: the delete fails, and the token is whole.
    await admin.del(`{${store.prefix}}:idx:access_token:${digest(newAccess)}`);
    await admin.del(`{${store.prefix}}:idx:refresh_token:${digest(token.refreshToken as string)}`);
    await admin.set(`{${store.prefix}}:idx:refresh_token:${digest(token.refreshToken as string)}`, 'plain string');
    expect(await store.deleteToken(token.id as string).catch((caught) => caught)).toMatchObject({ code: 'BACKEND_FAILURE' });
    expect(await admin.hgetall(`{${store.prefix}}:token:${token.id}`)).toEqual(hashBefore);
    expect((await store.findToken(new OAuthToken({ accessToken: token.accessToken })))?.id).toBe(token.id);
    expect((await store.findToken(new OAuthToken({ userSignature: token.userSignature })))?.id).toBe(token.id);
    expect(await keysOf(store.prefix)).toEqual(before);
    await store.close();
  });
});

/** A token whose every secret is unique to this call and long enough to be searched for. */
function secretToken(name: string): OAuthToken {
  const secret = (kind: string) => `${kind}-${randomBytes(12).toString('hex')}`;
  return new OAuthToken({
    userSignature: new UserSignature(`${name}@example.com:1`),
    clientId: 'client',
    clientSecret: secret('client-secret'),
    refreshToken: secret('refresh'),
    accessToken: secret('access'),
    grantToken: secret('grant'),
  });
}

/**
 * ioredis attaches the command (EVALSHA with every argument: client secret, refresh, access and grant token)
 * to a reply error; none of it may reach the TokenStoreError, however deep one looks.
 */
function expectNoSecrets(error: unknown, token: OAuthToken): void {
  const everything = inspect(error, { depth: Infinity, showHidden: true });
  for (const secret of [token.clientSecret, token.refreshToken, token.accessToken, token.grantToken]) {
    expect(everything).not.toContain(secret);
  }
  expect(everything).not.toContain('EVALSHA');
  expect((error as { cause?: { command?: unknown } }).cause?.command).toBeUndefined();
}

describe('server errors never carry token values (the command ioredis attaches is dropped)', () => {
  test('OOM under maxmemory (a throwaway server of our own) is BACKEND_FAILURE without secrets', async () => {
    const server = await startThrowawayRedis();
    const configure = new Redis(server.url);
    const store = new RedisTokenStore({ url: server.url, prefix: 'oom' });
    try {
      // A server of our own: the shared one is never reconfigured.
      await configure.config('SET', 'maxmemory', '1');
      await configure.config('SET', 'maxmemory-policy', 'noeviction');
      const token = secretToken('oom');
      const error = await store.saveToken(token).catch((caught) => caught);
      expect(error).toMatchObject({ code: 'BACKEND_FAILURE', operation: 'saveToken' });
      expect(error.cause.message).toMatch(/^OOM/);
      expectNoSecrets(error, token);
    } finally {
      await store.close();
      configure.disconnect();
      await server.destroy();
    }
  });

  test('READONLY from a replica (as after a failover) is BACKEND_UNAVAILABLE without secrets', async () => {
    const primary = await startThrowawayRedis();
    const replica = await startThrowawayRedis();
    const configure = new Redis(replica.url);
    const store = new RedisTokenStore({ url: replica.url, prefix: 'readonly' });
    try {
      await configure.replicaof('127.0.0.1', primary.port);
      const token = secretToken('readonly');
      const error = await store.saveToken(token).catch((caught) => caught);
      expect(error).toMatchObject({ code: 'BACKEND_UNAVAILABLE', operation: 'saveToken' });
      expect(error.cause.message).toMatch(/^READONLY/);
      expectNoSecrets(error, token);
    } finally {
      await store.close();
      configure.disconnect();
      await replica.destroy();
      await primary.destroy();
    }
  });

  test('a lookup that fails hides the value it looked up', async () => {
    const store = openStore();
    const token = secretToken('lookup');
    // The access token's index key holds a string: the find script's ZRANGE on it fails with WRONGTYPE.
    const digest = (await admin.eval('return redis.sha1hex(ARGV[1])', 0, token.accessToken as string)) as string;
    await admin.set(`{${store.prefix}}:idx:access_token:${digest}`, 'not a sorted set');
    const error = await store.findToken(new OAuthToken({ accessToken: token.accessToken })).catch((caught) => caught);
    expect(error).toMatchObject({ code: 'BACKEND_FAILURE', operation: 'findToken' });
    expectNoSecrets(error, token);
    await store.close();
  });
});

describe('close', () => {
  test('after close() every method and migrate() reject with STORE_CLOSED and send nothing; close() twice is fine', async () => {
    const store = openStore();
    const token = userToken('closed@example.com:1', { accessToken: 'a' });
    await store.saveToken(token);
    await store.close();
    const calls: [string, () => Promise<unknown>][] = [
      ['findToken', () => store.findToken(new OAuthToken({ accessToken: 'a' }))],
      ['saveToken', () => store.saveToken(userToken('after-close@example.com:1', { accessToken: 'b' }))],
      ['findTokenById', () => store.findTokenById(token.id as string)],
      ['deleteToken', () => store.deleteToken(token.id as string)],
      ['getTokens', () => store.getTokens()],
      ['deleteTokens', () => store.deleteTokens()],
      ['migrate', () => store.migrate()],
      // Arguments that would be refused, or that look nothing up, still get STORE_CLOSED first.
      ['findToken', () => store.findToken(new OAuthToken({ clientId: 'only-a-client-id' }))],
      ['saveToken', () => store.saveToken(new OAuthToken({ clientId: 'no-token-material' }))],
      ['deleteToken', () => store.deleteToken('')],
      ['findTokenById', () => store.findTokenById(42 as unknown as string)],
    ];
    for (const [operation, call] of calls) {
      await expect(call()).rejects.toMatchObject({ code: 'STORE_CLOSED', store: 'RedisTokenStore', operation });
    }
    await expect(store.close()).resolves.toBeUndefined();
    const reader = new RedisTokenStore({ url, prefix: store.prefix });
    expect((await reader.getTokens()).map((each) => each.id)).toEqual([token.id]);
    await reader.close();
  });

  test("ioredis's keyPrefix is refused, in redisOptions and on a client passed in: the scripts would write outside it", async () => {
    expect(() => new RedisTokenStore({ url, redisOptions: { keyPrefix: 'app:' } })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringContaining("use the store's prefix option") }),
    );
    const client = new Redis(url, { keyPrefix: 'app:', lazyConnect: true });
    try {
      expect(() => new RedisTokenStore({ client })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    } finally {
      client.disconnect();
    }
  });

  test('calls waiting for a server that is down settle with STORE_CLOSED as soon as close() runs, not at their deadline', async () => {
    const store = new RedisTokenStore({ url: `redis://127.0.0.1:${await freePort()}`, operationTimeoutMs: 5000 });
    const waiting = [store.findTokenById('x'), store.saveToken(userToken('waiting@example.com:1', { accessToken: 'a' }))].map((call) =>
      call.catch((error: unknown) => error),
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    const started = Date.now();
    await store.close();
    for (const error of await Promise.all(waiting)) expect(error).toMatchObject({ code: 'STORE_CLOSED' });
    expect(Date.now() - started).toBeLessThan(1000);
  });

  test('a store that never connected closes at once', async () => {
    const store = new RedisTokenStore({ url, prefix: randomPrefix() });
    await expect(store.close()).resolves.toBeUndefined();
    await expect(store.findTokenById('x')).rejects.toMatchObject({ code: 'STORE_CLOSED' });
  });
});

describe('connections', () => {
  test('a client passed in is used and left open by close()', async () => {
    const client = new Redis(url);
    const prefix = randomPrefix();
    prefixes.push(prefix);
    const store = new RedisTokenStore({ client, prefix });
    await store.saveToken(userToken('byo@example.com:1', { accessToken: 'a' }));
    try {
      await store.close();
      expect(await client.ping()).toBe('PONG');
      await expect(store.getTokens()).rejects.toMatchObject({ code: 'STORE_CLOSED' });
    } finally {
      await client.quit();
    }
  });

  test('a store opened from a URL uses one connection and closes it', async () => {
    const store = openStore();
    const name = `crm-test-${store.prefix}`;
    const before = Number((await admin.info('clients')).match(/connected_clients:(\d+)/)?.[1]);
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.saveToken(userToken(`${name}-${i}`, { accessToken: `a${i}` }))));
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.findToken(new OAuthToken({ accessToken: `a${i}` }))));
    const during = Number((await admin.info('clients')).match(/connected_clients:(\d+)/)?.[1]);
    // Other test files share this server, so only an upper bound on our own growth is stable.
    expect(during - before).toBeLessThanOrEqual(1 + 5);
    await store.close();
  });

  test('each lookup and each save is one round trip (EVALSHA), after migrate() loaded the scripts', async () => {
    const server = await startThrowawayRedis();
    const store = new RedisTokenStore({ url: server.url, prefix: 'round-trips' });
    const monitorClient = new Redis(server.url);
    try {
      await store.migrate();
      await store.saveToken(userToken('warm@example.com:1', { accessToken: 'warm' }));
      const monitor = await monitorClient.monitor();
      const commands: string[] = [];
      monitor.on('monitor', (_time: string, args: string[], source: string) => {
        if (!source.includes('lua')) commands.push(String(args[0]).toLowerCase());
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const token = userToken('rt@example.com:1', { accessToken: 'rt' });
      await store.saveToken(token);
      await store.saveToken(new OAuthToken({ id: token.id, accessToken: 'rt2' }));
      await store.findToken(new OAuthToken({ userSignature: new UserSignature('rt@example.com:1') }));
      await store.findTokenById(token.id as string);
      await store.deleteToken(token.id as string);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(commands).toEqual(['evalsha', 'evalsha', 'evalsha', 'hgetall', 'evalsha']);
      monitor.disconnect();
    } finally {
      await store.close();
      monitorClient.disconnect();
      await server.destroy();
    }
  });
});
