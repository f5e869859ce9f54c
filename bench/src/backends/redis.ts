import { RedisTokenStore } from '@crm/store-redis';
import { ensureRedis } from '@crm/test-services/redis';
import KeyvRedis from '@keyv/redis';
import { Redis } from 'ioredis';
import Keyv from 'keyv';
import type { Backend, Contender, Settings } from '../backend.js';
import { keyvContender, keyvEntries } from '../keyv.js';
import {
  COLUMNS,
  newTokenRow,
  newUserName,
  ourContender,
  pickIndex,
  refreshed,
  type TokenRow,
  tokenId,
  tokenRows,
  toOAuthToken,
  userName,
} from '../tokens.js';

const BATCH = 2_000;

/** One round trip: follow the user-name key to the token's hash and return the hash. */
const FIND_BY_USER = `
local id = redis.call('GET', KEYS[1])
if not id then return nil end
return redis.call('HGETALL', ARGV[1] .. id)
`;

/**
 * One round trip: follow the user-name key to the token's hash and set the refreshed access token and
 * expiry there. The job names the user, not the id, so the floor looks the id up as the store must.
 */
const UPDATE_BY_USER = `
local id = redis.call('GET', KEYS[1])
if not id then return 0 end
return redis.call('HSET', ARGV[1] .. id, 'access_token', ARGV[2], 'expiry_time', ARGV[3])
`;

/** Field-value pairs of a row for HSET: absent fields are not stored, as the store does. */
function hashFields(row: TokenRow): string[] {
  return COLUMNS.flatMap((column) => (row[column] === null ? [] : [column, row[column] as string]));
}

/** Deletes every key starting with `prefix` (a prefix of the bench's own, without glob characters). */
export async function removeKeys(client: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await client.unlink(...keys);
  } while (cursor !== '0');
}

export async function openRedis(settings: Settings): Promise<Backend> {
  const service = await ensureRedis();
  const admin = new Redis(service.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await admin.connect();
  } catch (error) {
    admin.disconnect();
    await service.stop();
    throw error;
  }
  const info = await admin.info('server');
  const version = /redis_version:(\S+)/.exec(info)?.[1] ?? '?';
  return {
    name: 'Redis',
    version: `Redis ${version}`,
    async load(size) {
      const ourPrefix = `crm-bench-ours-${settings.tag}-${size}`;
      const floorBase = `{crm-bench-floor-${settings.tag}-${size}}:`;
      const keyvNamespace = `crm-bench-keyv-${settings.tag}-${size}`;

      const store = new RedisTokenStore({ url: service.url, prefix: ourPrefix });
      await store.migrate();
      // Through the store's own save script, BATCH saves in flight: ioredis pipelines them, and the keys are
      // exactly what the store writes.
      for (let from = 0; from < size; from += BATCH) {
        await Promise.all(tokenRows(from, Math.min(size, from + BATCH)).map((row) => store.saveToken(toOAuthToken(row))));
      }

      const client = new Redis(service.url);
      const tokenKey = (id: string) => `${floorBase}t:${id}`;
      const userKey = (name: string) => `${floorBase}u:${name}`;
      for (let from = 0; from < size; from += BATCH) {
        const pipeline = client.pipeline();
        for (const row of tokenRows(from, Math.min(size, from + BATCH))) {
          pipeline.hset(tokenKey(row.id as string), ...hashFields(row));
          pipeline.set(userKey(row.user_name as string), row.id as string);
        }
        await pipeline.exec();
      }
      client.defineCommand('findByUser', { numberOfKeys: 1, lua: FIND_BY_USER });
      client.defineCommand('updateByUser', { numberOfKeys: 1, lua: UPDATE_BY_USER });
      const scripts = client as unknown as {
        findByUser(key: string, base: string): Promise<string[] | null>;
        updateByUser(key: string, base: string, accessToken: string, expiryTime: string): Promise<number>;
      };
      const findByUser = (key: string, base: string) => scripts.findByUser(key, base);

      const keyv = new Keyv<TokenRow>({ store: new KeyvRedis(service.url), namespace: keyvNamespace });
      for (let from = 0; from < size; from += BATCH) await keyv.setMany(keyvEntries(tokenRows(from, Math.min(size, from + BATCH))));

      const floor: Contender = {
        kind: 'floor',
        label: 'ioredis: EVALSHA user-name key → hash; HGETALL by id; EVALSHA user-name key → HSET; HSET + SET in one MULTI',
        operations: {
          'findToken (user name)': (round) => findByUser(userKey(userName(pickIndex(round, size))), `${floorBase}t:`),
          findTokenById: async (round) => {
            const hash = await client.hgetall(tokenKey(tokenId(pickIndex(round, size))));
            return Object.keys(hash).length === 0 ? null : hash;
          },
          'saveToken (update)': (round) => {
            const { accessToken, expiryTime } = refreshed(round, 'floor');
            return scripts.updateByUser(userKey(userName(pickIndex(round, size))), `${floorBase}t:`, accessToken, String(expiryTime));
          },
          'saveToken (insert)': (round) => {
            const row = { ...newTokenRow(newUserName('floor', settings.tag, round), round), id: `f${settings.tag}${round}` };
            return client
              .multi()
              .hset(tokenKey(row.id), ...hashFields(row))
              .set(userKey(row.user_name as string), row.id)
              .exec();
          },
        },
      };
      const ours = ourContender('RedisTokenStore', store, size, settings.tag);
      return {
        contenders: [ours, floor, keyvContender(keyv, '@keyv/redis (node-redis), own namespace', size, settings.tag)],
        async close() {
          await keyv.disconnect();
          await store.close();
          client.disconnect();
          await removeKeys(admin, `{${ourPrefix}}:`);
          await removeKeys(admin, floorBase);
          await removeKeys(admin, keyvNamespace);
        },
      };
    },
    async close() {
      admin.disconnect();
      await service.stop();
    },
  };
}
