/**
 * A write whose bytes reach Redis only after the store's deadline (a network holding the packets, a server
 * that stalls before it reads its socket) has been reported as BACKEND_UNAVAILABLE, but the server still
 * reads and runs it. Each write script compares the deadline it carries, in the server's time, with the
 * server's clock first, and writes nothing past it.
 */
import { OAuthToken, type TokenStoreError, UserSignature } from '@crm/core';
import { clientNow } from '@crm/core/store-kit';
import { Redis } from 'ioredis';
import { RedisTokenStore } from '../src/index.js';
import { SCRIPTS, storeKeys } from '../src/scripts.js';
import { randomPrefix, redisUrl, removePrefix } from './conformance-options.js';
import { startProxy } from './proxy.js';

const TIMEOUT_MS = 1000;
/** How long the proxy holds a write's bytes: well past the deadline. */
const HOLD_MS = 2500;
/** Timer and scheduling slack on a busy two-core machine. */
const SLACK_MS = 1000;

/** A script's `{'expired'}` reply, as RESP on the wire. */
const EXPIRED_REPLY = '*1\r\n$7\r\nexpired\r\n';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const errorOf = (pending: Promise<unknown>): Promise<TokenStoreError | null> =>
  pending.then(
    () => null,
    (error: unknown) => error as TokenStoreError,
  );

/** Every key under the prefix with its whole content, read directly (not through the proxy or the store). */
async function storedKeys(client: Redis, prefix: string): Promise<Record<string, unknown>> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await client.scan(cursor, 'MATCH', `{${prefix}}:*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  const content: Record<string, unknown> = {};
  for (const key of keys.sort()) {
    const type = await client.type(key);
    if (type === 'hash') content[key] = await client.hgetall(key);
    else if (type === 'zset') content[key] = await client.zrange(key, 0, -1, 'WITHSCORES');
    else content[key] = await client.get(key);
  }
  return content;
}

test('a write held past its deadline fails with BACKEND_UNAVAILABLE and is not applied when Redis runs it later', async () => {
  const url = await redisUrl();
  const proxy = await startProxy(new URL(url));
  const direct = new Redis(url);
  const prefix = randomPrefix();
  const store = new RedisTokenStore({ url: proxy.url, prefix, operationTimeoutMs: TIMEOUT_MS });
  try {
    const userSignature = new UserSignature('late@example.com:1');
    const stored = new OAuthToken({ userSignature, accessToken: 'initial', refreshToken: 'kept', expiryTime: 1 });
    await store.saveToken(stored);
    await store.saveToken(new OAuthToken({ userSignature: new UserSignature('other@example.com:1'), accessToken: 'other' }));
    const before = await storedKeys(direct, prefix);
    expect(Object.keys(before).length).toBeGreaterThan(3);
    const writes: Array<[string, () => Promise<unknown>, string?]> = [
      ['save by user name', () => store.saveToken(new OAuthToken({ userSignature, accessToken: 'late', expiryTime: 2 }))],
      ['save by id', () => store.saveToken(new OAuthToken({ id: stored.id, accessToken: 'late-by-id', expiryTime: 3 }))],
      ['insert', () => store.saveToken(new OAuthToken({ userSignature: new UserSignature('new@example.com:1'), accessToken: 'new' }))],
      ['deleteToken', () => store.deleteToken(stored.id as string)],
      // Its SCANs go through; the script that deletes what they found is held.
      ['deleteTokens', () => store.deleteTokens(), SCRIPTS.purge.sha],
    ];
    for (const [name, write, from] of writes) {
      // The connection is open and idle: what the proxy holds is the write itself.
      await store.findToken(new OAuthToken({ userSignature }));
      const refused = proxy.replies(EXPIRED_REPLY);
      proxy.hold(from);
      const started = Date.now();
      expect([name, (await errorOf(write()))?.code]).toEqual([name, 'BACKEND_UNAVAILABLE']);
      expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + SLACK_MS);
      expect([name, proxy.holding()]).toEqual([name, true]);
      await sleep(HOLD_MS - (Date.now() - started));
      proxy.release();
      // Redis runs one connection's commands in order: once this is answered, the held write has run.
      await store.findToken(new OAuthToken({ userSignature }));
      expect([name, await storedKeys(direct, prefix)]).toEqual([name, before]);
      expect([name, proxy.replies(EXPIRED_REPLY)]).toEqual([name, refused + 1]); // it ran, and refused: its deadline had passed
    }
    // The store goes on working on the same connection.
    await store.saveToken(new OAuthToken({ userSignature, accessToken: 'after' }));
    expect(await direct.hgetall(storeKeys(prefix).token(stored.id as string))).toMatchObject({
      access_token: 'after',
      refresh_token: 'kept',
    });
  } finally {
    await store.close();
    await proxy.close();
    await removePrefix(direct, prefix);
    direct.disconnect();
  }
}, 60000);

test("a write whose deadline passes on the server's clock first is refused there, and the caller gets BACKEND_UNAVAILABLE from it", async () => {
  // The store learns the server's clock on its first write. The answer held back by the proxy makes the
  // store place its deadlines earlier on the server by that much; a later write that reaches the server
  // between that point and the store's own deadline is refused there, while the store still waits.
  const timeoutMs = 10_000;
  const url = await redisUrl();
  const proxy = await startProxy(new URL(url));
  const direct = new Redis(url);
  const prefix = randomPrefix();
  const store = new RedisTokenStore({ url: proxy.url, prefix, operationTimeoutMs: timeoutMs });
  try {
    await store.migrate();
    const userSignature = new UserSignature('clock@example.com:1');
    proxy.holdReplies();
    const first = store.saveToken(new OAuthToken({ userSignature, accessToken: 'initial' }));
    await sleep(timeoutMs / 10 - 100); // less than the largest round trip the store keeps a measurement from
    proxy.releaseReplies();
    await first;
    proxy.hold();
    const started = Date.now();
    let settledAfterMs = 0;
    const late = errorOf(store.saveToken(new OAuthToken({ userSignature, accessToken: 'late' }))).then((error) => {
      settledAfterMs = Date.now() - started;
      return error;
    });
    await sleep(timeoutMs - timeoutMs / 20 - (Date.now() - started)); // past the server's deadline, before the store's
    proxy.release();
    const failure = await late;
    expect(failure?.code).toBe('BACKEND_UNAVAILABLE');
    expect(failure?.message).toMatch(/received the saveToken after its deadline/);
    expect(settledAfterMs).toBeLessThan(timeoutMs);
    expect((await store.findToken(new OAuthToken({ userSignature })))?.accessToken).toBe('initial');
    // The store learns the server's clock again, and writes go on.
    await store.saveToken(new OAuthToken({ userSignature, accessToken: 'after' }));
    expect((await store.findToken(new OAuthToken({ userSignature })))?.accessToken).toBe('after');
  } finally {
    await store.close();
    await proxy.close();
    await removePrefix(direct, prefix);
    direct.disconnect();
  }
}, 60000);

test('the write scripts check their deadline against TIME before anything else: past it they write nothing', async () => {
  const client = new Redis(await redisUrl());
  const prefix = randomPrefix();
  const keys = storeKeys(prefix);
  const micros = async () => {
    const [seconds, us] = (await client.time()).map(Number);
    return (seconds as number) * 1_000_000 + (us as number);
  };
  // base, deadline, lookup column, lookup value, fresh id, then id and the other columns ('' = absent).
  const saveArgs = (deadline: number) => [keys.base, String(deadline), 'user_name', 'u@example.com:1', 'fresh00001', '', 'u@example.com:1'];
  try {
    const past = (await micros()) - 1;
    expect(await client.eval(SCRIPTS.save.lua, 1, keys.ids, ...saveArgs(past))).toEqual(['expired']);
    expect(await client.keys(`{${prefix}}:*`)).toEqual([]);
    const saved = (await client.eval(SCRIPTS.save.lua, 1, keys.ids, ...saveArgs((await micros()) + 60_000_000))) as string[];
    expect(saved.slice(0, 3)).toEqual(['saved', 'fresh00001', 'u@example.com:1']);
    const written = (await client.keys(`{${prefix}}:*`)).sort();
    expect(written.length).toBeGreaterThan(2);
    expect(await client.eval(SCRIPTS.delete.lua, 1, keys.ids, keys.base, String((await micros()) - 1), 'fresh00001')).toEqual(['expired']);
    expect(await client.eval(SCRIPTS.purge.lua, 1 + written.length, keys.ids, ...written, keys.base, String((await micros()) - 1))).toEqual(
      ['expired'],
    );
    expect((await client.keys(`{${prefix}}:*`)).sort()).toEqual(written);
    expect(await client.eval(SCRIPTS.delete.lua, 1, keys.ids, keys.base, String((await micros()) + 60_000_000), 'fresh00001')).toBe(1);
    expect(await client.exists(keys.token('fresh00001'))).toBe(0);
    // The store's own clock against the server's: on one machine they agree within a second.
    expect(Math.abs((await micros()) / 1000 - clientNow())).toBeLessThan(1000);
  } finally {
    await removePrefix(client, prefix);
    client.disconnect();
  }
});
