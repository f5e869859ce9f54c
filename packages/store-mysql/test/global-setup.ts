import { ensureMySQL, MYSQL_URL_ENV, type MySQLService } from '@crm/test-services/mysql';

declare global {
  var crmMySQLService: MySQLService | undefined;
}

/** Finds MariaDB at MYSQL_URL or on 3306, else starts a throwaway one; fails with the install command otherwise. */
export default async function globalSetup(): Promise<void> {
  const service = await ensureMySQL();
  globalThis.crmMySQLService = service;
  process.env[MYSQL_URL_ENV] = service.url;
}
