/**
 * How the conformance suite (and the demo) gets Redis stores: each store on a fresh random prefix, on the
 * server from REDIS_URL (else found or started by ensureRedis), or on the three-master cluster from
 * REDIS_CLUSTER_NODES (else started by startRedisCluster). Works outside jest.
 */
import { randomBytes } from 'node:crypto';
import type { ConformanceOptions } from '@crm/store-conformance';
import { clusterNodesFromEnv, ensureRedis, startRedisCluster } from '@crm/test-services/redis';
import { Cluster, Redis } from 'ioredis';
import { RedisTokenStore, resilientRedisOptions } from '../src/index.js';

let serverUrl: Promise<string> | undefined;
let clusterNodes: Promise<{ host: string; port: number }[]> | undefined;

/** The standalone server's URL; a throwaway server started here ends with this process. */
export function redisUrl(): Promise<string> {
  serverUrl ??= process.env.REDIS_URL ? Promise.resolve(process.env.REDIS_URL) : ensureRedis().then((redis) => redis.url);
  return serverUrl;
}

/** The cluster's masters; a cluster started here ends with this process. */
export function redisClusterNodes(): Promise<{ host: string; port: number }[]> {
  clusterNodes ??= Promise.resolve(clusterNodesFromEnv() ?? startRedisCluster().then((cluster) => cluster.nodes));
  return clusterNodes;
}

/** A Cluster client with the store's resilient options, returned once it is ready (its offline queue is off). */
export async function newClusterClient(): Promise<Cluster> {
  const client = new Cluster(await redisClusterNodes(), { redisOptions: resilientRedisOptions(), enableOfflineQueue: false });
  client.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the Redis Cluster client did not become ready within 10 s')), 10000);
    client.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  return client;
}

export function randomPrefix(): string {
  return `crm-test:${randomBytes(6).toString('hex')}`;
}

/** Removes every key under a prefix with plain commands, independent of the store's own deleteTokens. */
export async function removePrefix(client: Redis | Cluster, prefix: string): Promise<void> {
  const nodes = client.isCluster ? (client as Cluster).nodes('master') : [client as Redis];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `{${prefix}}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await client.del(...keys);
    } while (cursor !== '0');
  }
}

async function quit(client: Redis | Cluster): Promise<void> {
  await client.quit().catch(() => client.disconnect());
}

/**
 * `standalone`: stores open their own connection from the URL (and close it). `cluster`: each store gets a
 * Cluster client of its own, passed in; destroy() closes it and those of the store's reopened siblings.
 */
export function createConformanceOptions(target: 'standalone' | 'cluster' = 'standalone'): ConformanceOptions<RedisTokenStore> {
  const clientsByPrefix = new Map<string, Cluster[]>();
  const open = async (prefix: string): Promise<RedisTokenStore> => {
    if (target === 'standalone') return new RedisTokenStore({ url: await redisUrl(), prefix });
    const client = await newClusterClient();
    clientsByPrefix.set(prefix, [...(clientsByPrefix.get(prefix) ?? []), client]);
    return new RedisTokenStore({ client, prefix });
  };
  return {
    create: () => open(randomPrefix()),
    reopen: (store) => open(store.prefix),
    async destroy(store) {
      const client = target === 'standalone' ? new Redis(await redisUrl()) : await newClusterClient();
      if (target === 'standalone') (client as Redis).on('error', () => {});
      try {
        await removePrefix(client, store.prefix);
      } finally {
        await quit(client);
        for (const storeClient of clientsByPrefix.get(store.prefix) ?? []) await quit(storeClient);
        clientsByPrefix.delete(store.prefix);
      }
    },
  };
}
