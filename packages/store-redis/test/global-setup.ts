import { ensureRedis, startRedisCluster } from '@crm/test-services/redis';

/** Stops what the setup started; globalTeardown runs in the same process. */
export const servicesToStop: { stop(): Promise<void> }[] = [];

export default async function globalSetup(): Promise<void> {
  const redis = await ensureRedis();
  servicesToStop.push(redis);
  process.env.REDIS_URL = redis.url;
  if (!process.env.REDIS_CLUSTER_NODES) {
    const cluster = await startRedisCluster();
    servicesToStop.push(cluster);
    process.env.REDIS_CLUSTER_NODES = cluster.nodes.map((node) => `${node.host}:${node.port}`).join(',');
  }
  (globalThis as { crmRedisServices?: typeof servicesToStop }).crmRedisServices = servicesToStop;
}
