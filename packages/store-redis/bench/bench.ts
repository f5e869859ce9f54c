/**
 * findToken by user name and saveToken (update of a stored user) with 1,000 and 100,000 stored tokens, next
 * to raw ioredis sending (a) the very EVALSHA the store sends and (b) the plain command a hand-written layout
 * keyed by id would send (HGETALL / HSET of the token's hash), all on one connection.
 * Run with `pnpm bench`; it uses REDIS_URL, 127.0.0.1:6379 or a throwaway server.
 */
import { randomBytes } from 'node:crypto';
import { OAuthToken, UserSignature } from '@crm/core';
import { LOOKUP_COLUMNS, tokenToValues } from '@crm/core/store-kit';
import { type ComparisonRow, interleavedMedians, printComparison } from '@crm/test-services/bench';
import { ensureRedis } from '@crm/test-services/redis';
import { Redis } from 'ioredis';
import { RedisTokenStore, resilientRedisOptions } from '../src/index.js';
import { SCRIPTS, storeKeys } from '../src/scripts.js';

const SIZES = [1_000, 100_000];
const OPERATIONS = 2_000;
const WARMUP = 200;
const LOAD_BATCH = 2_000;

const userName = (index: number) => `user${index}@zylker.com:6000123`;
const tokenId = (index: number) => `b${String(index).padStart(9, '0')}`;
const randomUser = (size: number) => Math.floor(Math.random() * size);

async function benchSize(url: string, size: number): Promise<ComparisonRow[]> {
  // One connection for everything: the store and raw ioredis take turns on it.
  const client = new Redis(url, resilientRedisOptions());
  const store = new RedisTokenStore({ client, prefix: `crm-bench:${randomBytes(4).toString('hex')}` });
  const keys = storeKeys(store.prefix);
  try {
    await store.migrate();
    // Bulk load through the store's own save script, LOAD_BATCH saves in flight at a time: ioredis writes
    // each batch to the socket as one pipeline, and the layout is exactly what the store itself writes.
    const started = Date.now();
    for (let first = 0; first < size; first += LOAD_BATCH) {
      const batch: Promise<void>[] = [];
      for (let index = first; index < Math.min(size, first + LOAD_BATCH); index++) {
        batch.push(
          store.saveToken(
            new OAuthToken({
              id: tokenId(index),
              userSignature: new UserSignature(userName(index)),
              clientId: '1000.CLIENT',
              clientSecret: `client-secret-${index}`,
              refreshToken: `1000.refresh.${index}`,
              accessToken: `1000.access.${index}`,
              expiryTime: 1764000000000 + index,
              redirectUrl: 'https://app.example.com/callback',
              apiDomain: 'https://www.zohoapis.eu',
            }),
          ),
        );
      }
      await Promise.all(batch);
    }
    console.error(`loaded ${size.toLocaleString('en')} tokens in ${Date.now() - started} ms`);

    const [findStore, findSame, findPlain] = await interleavedMedians(
      [
        () => store.findToken(new OAuthToken({ userSignature: new UserSignature(userName(randomUser(size))) })),
        () => client.evalsha(SCRIPTS.find.sha, 1, keys.ids, keys.base, LOOKUP_COLUMNS.userName, userName(randomUser(size))),
        () => client.hgetall(keys.token(tokenId(randomUser(size)))),
      ],
      OPERATIONS,
      WARMUP,
    );

    const update = (iteration: number, index: number) =>
      new OAuthToken({
        userSignature: new UserSignature(userName(index)),
        accessToken: `1000.access.new.${iteration}`,
        expiryTime: Date.now(),
      });
    const [saveStore, saveSame, savePlain] = await interleavedMedians(
      [
        (iteration) => store.saveToken(update(iteration, randomUser(size))),
        (iteration) => {
          const token = update(iteration, randomUser(size));
          const args = [
            LOOKUP_COLUMNS.userName,
            token.userName as string,
            'unusedid00',
            ...tokenToValues(token).map((value) => value ?? ''),
          ];
          return client.evalsha(SCRIPTS.save.sha, 1, keys.ids, keys.base, ...args);
        },
        (iteration) => {
          const token = update(iteration, randomUser(size));
          return client.hset(
            keys.token(tokenId(randomUser(size))),
            'access_token',
            token.accessToken as string,
            'expiry_time',
            String(token.expiryTime),
          );
        },
      ],
      OPERATIONS,
      WARMUP,
    );
    return [
      { operation: 'findToken (user name)', tokens: size, store: findStore, rawSame: findSame, rawPlain: findPlain },
      { operation: 'saveToken (update)', tokens: size, store: saveStore, rawSame: saveSame, rawPlain: savePlain },
    ];
  } finally {
    await store.deleteTokens().catch((error) => console.error('cleanup failed', error));
    // The plain variant changed access tokens behind the store's back, so their old index keys are left: remove every key of the prefix.
    await removeKeys(client, `{${store.prefix}}:*`).catch((error) => console.error('cleanup failed', error));
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
    const rows: ComparisonRow[] = [];
    for (const size of SIZES) rows.push(...(await benchSize(server.url, size)));
    printComparison(
      `RedisTokenStore vs raw ioredis, one connection, median of ${OPERATIONS} operations each after ${WARMUP} warm-up, variants interleaved (µs)`,
      'raw ioredis, same EVALSHA',
      'raw ioredis, plain HGETALL/HSET',
      rows,
      'same EVALSHA: the find / save script the store runs, called by hand with the same arguments.' +
        ' plain: HGETALL of the token hash by id, and HSET of access_token and expiry_time on it (no lookup by user name, no index upkeep, no merge).',
    );
  } finally {
    await server.stop();
  }
}

await main();
