export default async function globalTeardown(): Promise<void> {
  await (globalThis as { crmPostgres?: { stop(): Promise<void> } }).crmPostgres?.stop();
}
