/**
 * findToken by user name and saveToken of a refreshed access token (by user name, and by id as TokenManager
 * saves it) with 1,000 and 100,000 stored tokens, next to the floor and a Keyv-like baseline, all on one
 * connection, variants interleaved:
 *
 * - floor: what the job needs at the least. find: one script that follows a user-name key (a plain string
 *   holding the id) to the token's hash and returns it (GET, HGETALL); save: one HSET of access_token and
 *   expiry_time on the token's hash. Neither builds or checks a token, keeps an index, merges or returns.
 * - Keyv-like: the commands Keyv's Redis adapter sends for a token kept as one JSON value keyed by user
 *   name: GET and JSON.parse, JSON.stringify and SET. Keyv itself adds its own work on top.
 *
 * Measures the built package (`pnpm bench` builds it first): tsx's transform of the sources adds a
 * name-setting call to every closure the store creates, which costs more than some of what is measured.
 * Run with `pnpm bench`; it uses REDIS_URL, 127.0.0.1:6379 or a throwaway server. BENCH_SIZES=1000 for a quick run.
 */
import { randomBytes } from 'node:crypto';
import { OAuthToken, UserSignature } from '@crm/core';
import { interleavedMedians } from '@crm/test-services/bench';
import { ensureRedis } from '@crm/test-services/redis';
import { Redis } from 'ioredis';
import { RedisTokenStore, resilientRedisOptions } from '../dist/index.js';

const SIZES = (process.env.BENCH_SIZES ?? '1000,100000').split(',').map(Number);
const OPERATIONS = 2_000;
const WARMUP = 200;
const LOAD_BATCH = 2_000;

/** GET the user-name key, HGETALL the hash it names: the floor of a find by user name. */
const FLOOR_FIND = "local id = redis.call('GET', KEYS[1]) if not id then return nil end return redis.call('HGETALL', ARGV[1] .. id)";

const userName = (index: number) => `user${index}@zylker.com:6000123`;
const tokenId = (index: number) => `b${String(index).padStart(9, '0')}`;
const randomUser = (size: number) => Math.floor(Math.random() * size);

function storedToken(index: number): OAuthToken {
  return new OAuthToken({
    id: tokenId(index),
    userSignature: new UserSignature(userName(index)),
    clientId: '1000.CLIENT',
    clientSecret: `client-secret-${index}`,
    refreshToken: `1000.refresh.${index}`,
    accessToken: `1000.access.${index}`,
    expiryTime: 1764000000000 + index,
    redirectUrl: 'https://app.example.com/callback',
    apiDomain: 'https://www.zohoapis.eu',
  });
}

interface Row {
  operation: string;
  tokens: number;
  store: number;
  floor: number;
  keyv: number;
}

async function benchSize(url: string, size: number): Promise<Row[]> {
  // One connection for everything: the store and the baselines take turns on it.
  const client = new Redis(url, resilientRedisOptions());
  const store = new RedisTokenStore({ client, prefix: `crm-bench:${randomBytes(4).toString('hex')}` });
  const base = `{${store.prefix}}:`;
  const userKey = (index: number) => `${base}floor-user:${userName(index)}`;
  const jsonKey = (index: number) => `${base}keyv:${userName(index)}`;
  try {
    await store.migrate();
    const floorFind = (await client.script('LOAD', FLOOR_FIND)) as string;
    // Saves LOAD_BATCH at a time: ioredis writes each batch to the socket as one pipeline.
    const started = Date.now();
    for (let first = 0; first < size; first += LOAD_BATCH) {
      const batch: Promise<unknown>[] = [];
      for (let index = first; index < Math.min(size, first + LOAD_BATCH); index++) {
        const token = storedToken(index);
        batch.push(store.saveToken(token));
        batch.push(client.set(userKey(index), tokenId(index)));
        batch.push(client.set(jsonKey(index), JSON.stringify(token.toFields())));
      }
      await Promise.all(batch);
    }
    console.error(`loaded ${size.toLocaleString('en')} tokens in ${Date.now() - started} ms`);

    const [findStore, findFloor, findKeyv] = await interleavedMedians(
      [
        () => store.findToken(new OAuthToken({ userSignature: new UserSignature(userName(randomUser(size))) })),
        () => client.evalsha(floorFind, 1, userKey(randomUser(size)), `${base}token:`),
        async () => JSON.parse((await client.get(jsonKey(randomUser(size)))) as string),
      ],
      OPERATIONS,
      WARMUP,
    );

    const refreshed = (iteration: number) => ({ accessToken: `1000.access.new.${iteration}`, expiryTime: Date.now() });
    const hsetFloor = (iteration: number) => {
      const { accessToken, expiryTime } = refreshed(iteration);
      return client.hset(`${base}token:${tokenId(randomUser(size))}`, 'access_token', accessToken, 'expiry_time', String(expiryTime));
    };
    const setKeyv = (iteration: number) => {
      const index = randomUser(size);
      return client.set(jsonKey(index), JSON.stringify({ ...storedToken(index).toFields(), ...refreshed(iteration) }));
    };
    const [saveStore, saveFloor, saveKeyv] = await interleavedMedians(
      [
        (iteration) =>
          store.saveToken(new OAuthToken({ userSignature: new UserSignature(userName(randomUser(size))), ...refreshed(iteration) })),
        hsetFloor,
        setKeyv,
      ],
      OPERATIONS,
      WARMUP,
    );
    const [saveById, saveByIdFloor, saveByIdKeyv] = await interleavedMedians(
      [
        (iteration) =>
          store.saveToken(new OAuthToken({ id: tokenId(randomUser(size)), ...refreshed(iteration), apiDomain: 'https://www.zohoapis.eu' })),
        hsetFloor,
        setKeyv,
      ],
      OPERATIONS,
      WARMUP,
    );
    return [
      { operation: 'findToken (user name)', tokens: size, store: findStore, floor: findFloor, keyv: findKeyv },
      { operation: 'saveToken (user name, refreshed)', tokens: size, store: saveStore, floor: saveFloor, keyv: saveKeyv },
      { operation: 'saveToken (id, refreshed)', tokens: size, store: saveById, floor: saveByIdFloor, keyv: saveByIdKeyv },
    ];
  } finally {
    await store.deleteTokens().catch((error) => console.error('cleanup failed', error));
    // The floor's HSETs changed access tokens behind the store's back, and the baselines' keys are not the store's: remove every key of the prefix.
    await removeKeys(client, `${base}*`).catch((error) => console.error('cleanup failed', error));
    await client.quit();
  }
}

/** Deletes every key matching `pattern` (the bench's own prefix holds no glob characters). */
async function removeKeys(client: Redis, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await client.unlink(...keys);
  } while (cursor !== '0');
}

async function main(): Promise<void> {
  const server = await ensureRedis();
  try {
    const rows: Row[] = [];
    for (const size of SIZES) rows.push(...(await benchSize(server.url, size)));
    const format = (value: number) => value.toFixed(1).padStart(7);
    console.log(
      `RedisTokenStore vs the floor and Keyv-like commands, one connection, median of ${OPERATIONS} operations each after ${WARMUP} warm-up, variants interleaved (µs)\n`,
    );
    console.log('| operation | tokens | store | floor | Keyv-like | store / floor | store / Keyv-like |');
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const row of rows) {
      console.log(
        `| ${row.operation} | ${row.tokens.toLocaleString('en')} | ${format(row.store)} | ${format(row.floor)} | ${format(row.keyv)} | ${(row.store / row.floor).toFixed(2)} | ${(row.store / row.keyv).toFixed(2)} |`,
      );
    }
    console.log(
      '\nfloor: find = one script, GET of a user-name key and HGETALL of the hash it names; save = one HSET of access_token and expiry_time.' +
        ' Keyv-like: GET + JSON.parse, JSON.stringify + SET of the token as one JSON value.',
    );
  } finally {
    await server.stop();
  }
}

await main();
