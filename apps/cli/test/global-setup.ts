// Finds PostgreSQL, Redis and MariaDB/MySQL (POSTGRES_URL, REDIS_URL, MYSQL_URL, else their usual local ports)
// or starts throwaway servers from the installed binaries; where those are missing it fails naming the package
// to install. Tests read the URLs from the environment.
import { ensureMySQL, MYSQL_URL_ENV } from '@crm/test-services/mysql';
import { ensurePostgres, POSTGRES_URL_ENV } from '@crm/test-services/postgres';
import { ensureRedis } from '@crm/test-services/redis';

type Stoppable = { stop(): Promise<void> };

export default async function globalSetup(): Promise<void> {
  const postgres = await ensurePostgres();
  const redis = await ensureRedis();
  const mysql = await ensureMySQL();
  process.env[POSTGRES_URL_ENV] = postgres.url;
  process.env.REDIS_URL = redis.url;
  process.env[MYSQL_URL_ENV] = mysql.url;
  (globalThis as { crmServices?: Stoppable[] }).crmServices = [postgres, redis, mysql];
}
