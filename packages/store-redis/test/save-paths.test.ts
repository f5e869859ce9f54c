/**
 * The save script's paths one by one, against the real server: the refresh saves it writes as a two-field
 * HSET and one index move (by user name, by id), lookups whose index holds more than one id, and the
 * fresh id a store keeps for the next insert.
 */
import { OAuthToken, UserSignature } from '@crm/core';
import { Redis } from 'ioredis';
import { RedisTokenStore } from '../src/index.js';
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

function openStore(): RedisTokenStore {
  const prefix = randomPrefix();
  prefixes.push(prefix);
  return new RedisTokenStore({ url, prefix });
}

const fullToken = (name: string) =>
  new OAuthToken({
    userSignature: new UserSignature(name),
    clientId: '1000.CLIENT',
    clientSecret: `secret-${name}`,
    refreshToken: `refresh-${name}`,
    accessToken: `access-${name}`,
    grantToken: `grant-${name}`,
    expiryTime: 1700000000000,
    redirectUrl: 'https://app.example.com/callback',
    apiDomain: 'https://www.zohoapis.eu',
  });

const sha1 = async (value: string) => (await admin.eval('return redis.sha1hex(ARGV[1])', 0, value)) as string;

describe('a refreshed access token', () => {
  test.each([
    ['by user name', (stored: OAuthToken) => ({ userSignature: stored.userSignature })],
    ['by id, as TokenManager saves it', (stored: OAuthToken) => ({ id: stored.id, apiDomain: 'https://www.zohoapis.com' })],
  ])('%s: only the given fields change, every absent one keeps its stored value, and every lookup still finds it', async (_, target) => {
    const store = openStore();
    const stored = fullToken('refresh@example.com:1');
    await store.saveToken(stored);
    const other = fullToken('other@example.com:1');
    await store.saveToken(other);

    const refreshed = new OAuthToken({ ...target(stored), accessToken: 'access-new', expiryTime: 1800000000000 });
    await store.saveToken(refreshed);

    const expected = { ...stored.toFields(), ...refreshed.toFields(), id: stored.id, userSignature: stored.userSignature };
    expect(refreshed.toFields()).toEqual(expected);
    expect((await store.findTokenById(stored.id as string))?.toFields()).toEqual(expected);
    expect(await admin.hgetall(`{${store.prefix}}:token:${stored.id}`)).toEqual({
      id: stored.id,
      user_name: 'refresh@example.com:1',
      client_id: '1000.CLIENT',
      client_secret: 'secret-refresh@example.com:1',
      refresh_token: 'refresh-refresh@example.com:1',
      access_token: 'access-new',
      grant_token: 'grant-refresh@example.com:1',
      expiry_time: '1800000000000',
      redirect_url: 'https://app.example.com/callback',
      api_domain: expected.apiDomain,
    });
    // The index entry of the old access token moved; those of unchanged values stayed.
    expect(await store.findToken(new OAuthToken({ accessToken: 'access-refresh@example.com:1' }))).toBeNull();
    expect((await store.findToken(new OAuthToken({ accessToken: 'access-new' })))?.id).toBe(stored.id);
    expect((await store.findToken(new OAuthToken({ userSignature: stored.userSignature })))?.id).toBe(stored.id);
    const credentials = { clientId: '1000.CLIENT', clientSecret: 'secret-refresh@example.com:1' };
    expect((await store.findToken(new OAuthToken({ ...credentials, refreshToken: 'refresh-refresh@example.com:1' })))?.id).toBe(stored.id);
    expect((await store.findToken(new OAuthToken({ ...credentials, grantToken: 'grant-refresh@example.com:1' })))?.id).toBe(stored.id);
    expect(await admin.zcard(`{${store.prefix}}:idx:access_token:${await sha1('access-refresh@example.com:1')}`)).toBe(0);
    // The other token is untouched.
    expect((await store.findTokenById(other.id as string))?.toFields()).toEqual(other.toFields());
    await store.close();
  });

  test('a save that changes nothing writes nothing and returns the stored token', async () => {
    const store = openStore();
    const stored = fullToken('same@example.com:1');
    await store.saveToken(stored);
    const again = new OAuthToken({ userSignature: stored.userSignature, accessToken: stored.accessToken });
    await store.saveToken(again);
    expect(again.toFields()).toEqual(stored.toFields());
    expect((await store.getTokens()).map((token) => token.toFields())).toEqual([stored.toFields()]);
    await store.close();
  });
});

describe('an index key holding more than one id', () => {
  test('lookups skip ids whose token no longer holds the value, and find the one that does', async () => {
    const store = openStore();
    const base = `{${store.prefix}}:`;
    const stale = fullToken('stale@example.com:1');
    await store.saveToken(stale);
    const wanted = fullToken('wanted@example.com:1');
    await store.saveToken(wanted);
    // A stale entry first in the user-name index of `wanted` (as a crafted digest collision would leave one).
    await admin.zadd(`${base}idx:user_name:${await sha1('wanted@example.com:1')}`, 0, stale.id as string);

    const found = await store.findToken(new OAuthToken({ userSignature: wanted.userSignature }));
    expect(found?.id).toBe(wanted.id);
    const update = new OAuthToken({ userSignature: wanted.userSignature, accessToken: 'access-after' });
    await store.saveToken(update);
    expect(update.id).toBe(wanted.id);
    expect((await store.findTokenById(stale.id as string))?.toFields()).toEqual(stale.toFields());
    expect((await store.findTokenById(wanted.id as string))?.accessToken).toBe('access-after');
    await store.close();
  });

  test('a second live holder of the user name after the one found makes a save by that name CONFLICT, changing nothing', async () => {
    const store = openStore();
    const base = `{${store.prefix}}:`;
    const first = fullToken('twice@example.com:1');
    await store.saveToken(first);
    // A state the store never makes itself: a second hash with the same user name, indexed after the first.
    await admin.hset(`${base}token:intruder00`, 'id', 'intruder00', 'user_name', 'twice@example.com:1', 'access_token', 'intruder');
    await admin.zadd(`${base}idx:user_name:${await sha1('twice@example.com:1')}`, 999, 'intruder00');

    const update = new OAuthToken({ userSignature: first.userSignature, accessToken: 'access-never' });
    await expect(store.saveToken(update)).rejects.toMatchObject({ code: 'CONFLICT', operation: 'saveToken' });
    expect((await store.findTokenById(first.id as string))?.toFields()).toEqual(first.toFields());
    expect(await store.findToken(new OAuthToken({ accessToken: 'access-never' }))).toBeNull();
    await store.close();
  });
});

describe('fresh ids', () => {
  test('saves that update leave their drawn id unused, and later inserts still get distinct unused ids', async () => {
    const store = openStore();
    const known = fullToken('known@example.com:1');
    await store.saveToken(known);
    for (let i = 0; i < 3; i++) await store.saveToken(new OAuthToken({ userSignature: known.userSignature, accessToken: `a${i}` }));
    // A refused save in between changes nothing.
    const taken = fullToken('taken@example.com:1');
    await store.saveToken(taken);
    await expect(
      store.saveToken(new OAuthToken({ id: known.id, userSignature: taken.userSignature, accessToken: 'x' })),
    ).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    const inserted: OAuthToken[] = [];
    for (let i = 0; i < 3; i++) {
      const token = fullToken(`new${i}@example.com:1`);
      await store.saveToken(token);
      inserted.push(token);
    }
    const concurrent = Array.from({ length: 8 }, (_, i) => fullToken(`concurrent${i}@example.com:1`));
    await Promise.all(concurrent.map((token) => store.saveToken(token)));
    const ids = [known, taken, ...inserted, ...concurrent].map((token) => token.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9]{10}$/);
    const stored = await store.getTokens();
    expect(stored.map((token) => token.id).sort()).toEqual([...ids].sort());
    for (const token of [...inserted, ...concurrent])
      expect((await store.findTokenById(token.id as string))?.toFields()).toEqual(token.toFields());
    await store.close();
  });
});
