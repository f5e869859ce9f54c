import { OAuthToken, UserSignature } from '@crm/core';
import { describeTokenStore } from '@crm/store-conformance/jest';
import type { Cluster } from 'ioredis';
import { RedisTokenStore } from '../src/index.js';
import { createConformanceOptions, newClusterClient, randomPrefix, removePrefix } from './conformance-options.js';

// The whole suite again, on a real three-master Redis Cluster started by the global setup.
describeTokenStore('RedisTokenStore on Redis Cluster', createConformanceOptions('cluster'));

describe('Redis Cluster specifics', () => {
  let client: Cluster;
  beforeAll(async () => {
    client = await newClusterClient();
  });
  afterAll(async () => {
    await client.quit();
  });

  test('the cluster has three masters, and stores with different prefixes land on different slots', async () => {
    await client.ping();
    expect(client.nodes('master')).toHaveLength(3);
    const slots = new Set<number>();
    const prefixes = Array.from({ length: 6 }, () => randomPrefix());
    for (const prefix of prefixes) {
      const store = new RedisTokenStore({ client, prefix });
      const token = new OAuthToken({ userSignature: new UserSignature('slot@example.com:1'), accessToken: 'a', refreshToken: 'r' });
      await store.saveToken(token);
      // Every key of the store hashes to the slot of its tag.
      const slot = Number(await client.cluster('KEYSLOT', `{${prefix}}`));
      for (const key of [`{${prefix}}:ids`, `{${prefix}}:token:${token.id}`, `{${prefix}}:idx:user_name:0`]) {
        expect(Number(await client.cluster('KEYSLOT', key))).toBe(slot);
      }
      slots.add(slot);
      expect((await store.findToken(new OAuthToken({ accessToken: 'a' })))?.id).toBe(token.id);
    }
    expect(slots.size).toBeGreaterThan(1);
    for (const prefix of prefixes) await removePrefix(client, prefix);
  });

  test('deleteTokens on a cluster removes this prefix on whichever master holds it, and nothing else', async () => {
    const store = new RedisTokenStore({ client, prefix: randomPrefix() });
    const other = new RedisTokenStore({ client, prefix: randomPrefix() });
    for (let i = 0; i < 50; i++) {
      await store.saveToken(new OAuthToken({ userSignature: new UserSignature(`u${i}@example.com:1`), accessToken: `a${i}` }));
      await other.saveToken(new OAuthToken({ userSignature: new UserSignature(`u${i}@example.com:1`), accessToken: `a${i}` }));
    }
    await store.deleteTokens();
    expect(await store.getTokens()).toEqual([]);
    expect(await other.getTokens()).toHaveLength(50);
    await removePrefix(client, other.prefix);
  });
});
