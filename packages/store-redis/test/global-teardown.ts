export default async function globalTeardown(): Promise<void> {
  const services = (globalThis as { crmRedisServices?: { stop(): Promise<void> }[] }).crmRedisServices ?? [];
  for (const service of services) await service.stop();
}
