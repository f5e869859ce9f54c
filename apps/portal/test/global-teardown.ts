export default async function globalTeardown(): Promise<void> {
  for (const service of (globalThis as { crmServices?: Array<{ stop(): Promise<void> }> }).crmServices ?? []) await service.stop();
}
