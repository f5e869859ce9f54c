import { ensurePostgres, POSTGRES_URL_ENV } from '@crm/test-services/postgres';

export default async function globalSetup(): Promise<void> {
  const service = await ensurePostgres();
  process.env[POSTGRES_URL_ENV] = service.url;
  (globalThis as { crmPostgres?: { stop(): Promise<void> } }).crmPostgres = service;
}
