// Finds PostgreSQL (POSTGRES_URL, else 127.0.0.1:5432) or starts a throwaway server from the installed binaries;
// where those are missing it fails naming the package to install.
import { ensurePostgres, POSTGRES_URL_ENV } from '@crm/test-services/postgres';

export default async function globalSetup(): Promise<void> {
  const postgres = await ensurePostgres();
  process.env[POSTGRES_URL_ENV] = postgres.url;
  (globalThis as { crmServices?: Array<{ stop(): Promise<void> }> }).crmServices = [postgres];
}
