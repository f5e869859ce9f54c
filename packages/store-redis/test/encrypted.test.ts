import { join } from 'node:path';
import { encryptedStore, saveSampleSecrets, secretsShownIn } from '@crm/encryption';
import { describeTokenStore } from '@crm/store-conformance/jest';
import { Redis } from 'ioredis';
import { RedisTokenStore } from '../src/index.js';
import { randomPrefix, redisUrl, removePrefix } from './conformance-options.js';
import { createConformanceOptions, TEST_KEYS } from './encrypted-conformance-options.js';

// The whole suite on the encrypted store; the worker processes load the encrypted options too.
describeTokenStore('encryptedStore(RedisTokenStore)', {
  ...createConformanceOptions(),
  module: join(__dirname, 'encrypted-conformance-options.ts'),
});

test('the Redis keys, hashes and indexes hold none of the secrets, in any encoding', async () => {
  const prefix = randomPrefix();
  const store = encryptedStore(new RedisTokenStore({ url: await redisUrl(), prefix }), { keys: TEST_KEYS, activeKeyId: 't1' });
  const client = new Redis(await redisUrl());
  try {
    const { secrets, userName } = await saveSampleSecrets(store);
    const dump: unknown[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `{${prefix}}:*`, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) {
        const type = await client.type(key);
        const value =
          type === 'hash'
            ? await client.hgetall(key)
            : type === 'string'
              ? await client.get(key)
              : type === 'zset'
                ? await client.zrange(key, 0, -1, 'WITHSCORES')
                : type === 'set'
                  ? await client.smembers(key)
                  : type === 'list'
                    ? await client.lrange(key, 0, -1)
                    : `unexpected ${type}`;
        dump.push(key, value);
      }
    } while (cursor !== '0');
    const raw = JSON.stringify(dump);
    expect(raw).toContain(userName);
    expect(raw).not.toContain('unexpected');
    expect(secretsShownIn(raw, secrets)).toEqual([]);
  } finally {
    await store.close?.();
    await removePrefix(client, prefix);
    await client.quit();
  }
});
