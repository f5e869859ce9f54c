/**
 * How the conformance suite (and the demo) gets Redis stores: each store on a fresh random prefix, on the
 * server from REDIS_URL (else found or started by ensureRedis), or on the three-master cluster from
 * REDIS_CLUSTER_NODES (else started by startRedisCluster). Works outside jest: the worker processes of the
 * `processes` group load this module and call `openShared`.
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { ConformanceOptions } from '@crm/store-conformance';
import { clusterNodesFromEnv, ensureRedis, startRedisCluster } from '@crm/test-services/redis';
import { Cluster, Redis } from 'ioredis';
import { RedisTokenStore, resilientRedisOptions } from '../src/index.js';

type Node = { host: string; port: number };
/** What `share` hands to other processes: where the storage is, and its prefix. */
type SharedRedis = { target: 'standalone'; url: string; prefix: string } | { target: 'cluster'; nodes: Node[]; prefix: string };

/** This file, which the `processes` group's workers load: jest runs it as CommonJS, the demo and workers as ESM. */
const THIS_MODULE = typeof __filename === 'string' ? __filename : fileURLToPath(import.meta.url);

let serverUrl: Promise<string> | undefined;
let clusterNodes: Promise<Node[]> | undefined;

/** The standalone server's URL; a throwaway server started here ends with this process. */
export function redisUrl(): Promise<string> {
  serverUrl ??= process.env.REDIS_URL ? Promise.resolve(process.env.REDIS_URL) : ensureRedis().then((redis) => redis.url);
  return serverUrl;
}

/** The cluster's masters; a cluster started here ends with this process. */
export function redisClusterNodes(): Promise<Node[]> {
  clusterNodes ??= Promise.resolve(clusterNodesFromEnv() ?? startRedisCluster().then((cluster) => cluster.nodes));
  return clusterNodes;
}

/** A Cluster client with the store's resilient options, returned once it is ready (its offline queue is off). */
export async function newClusterClient(nodes?: Node[]): Promise<Cluster> {
  const client = new Cluster(nodes ?? (await redisClusterNodes()), { redisOptions: resilientRedisOptions(), enableOfflineQueue: false });
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
 * A store on a Cluster client of its own, which its close() also quits: the store never closes a client
 * passed in, but a test (or a worker process) that opened the client for this one store must not leak it.
 */
class ClusterTestStore extends RedisTokenStore {
  constructor(
    private readonly ownClient: Cluster,
    prefix: string,
  ) {
    super({ client: ownClient, prefix });
  }

  override async close(): Promise<void> {
    await super.close();
    await quit(this.ownClient);
  }
}

/** Opens a store over the storage `share` described, in this process or another. */
export async function openShared(description: unknown): Promise<RedisTokenStore> {
  const shared = description as SharedRedis;
  if (shared.target === 'cluster') return new ClusterTestStore(await newClusterClient(shared.nodes), shared.prefix);
  return new RedisTokenStore({ url: shared.url, prefix: shared.prefix });
}

/** A client for the suite's own raw commands on the target (cleanup, fault injection). */
async function adminClient(target: 'standalone' | 'cluster'): Promise<Redis | Cluster> {
  if (target === 'cluster') return newClusterClient();
  const client = new Redis(await redisUrl());
  client.on('error', () => {});
  return client;
}

/**
 * `standalone`: stores open their own connection from the URL (and close it). `cluster`: each store gets a
 * Cluster client of its own, passed in, and closes it with the store.
 */
export function createConformanceOptions(
  // The command-line suite calls this without arguments: CRM_REDIS_TARGET=cluster picks the cluster there.
  target: 'standalone' | 'cluster' = process.env.CRM_REDIS_TARGET === 'cluster' ? 'cluster' : 'standalone',
): ConformanceOptions<RedisTokenStore> {
  const describe = async (prefix: string): Promise<SharedRedis> =>
    target === 'cluster' ? { target, nodes: await redisClusterNodes(), prefix } : { target, url: await redisUrl(), prefix };
  return {
    create: async () => openShared(await describe(randomPrefix())),
    reopen: async (store) => openShared(await describe(store.prefix)),
    share: (store) => describe(store.prefix),
    openShared,
    module: THIS_MODULE,
    /**
     * The save script reads `{prefix}:ids` (a sorted set) on every save, insert or update: a plain string in
     * its place fails the script with WRONGTYPE, a real reply error to which ioredis attaches the EVALSHA
     * command with every token value. Nothing is written before that read. Every later save fails too, until
     * destroy() removes the prefix.
     */
    async injectFault(store) {
      const client = await adminClient(target);
      try {
        await client.set(`{${store.prefix}}:ids`, 'not a sorted set');
      } finally {
        await quit(client);
      }
    },
    async destroy(store) {
      const client = await adminClient(target);
      try {
        await removePrefix(client, store.prefix);
      } finally {
        await quit(client);
      }
    },
  };
}
