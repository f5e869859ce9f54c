import { randomBytes } from 'node:crypto';
import type { ConformanceOptions } from '@crm/store-conformance';
import { ensureMySQL, MYSQL_URL_ENV } from '@crm/test-services/mysql';
import { createConnection } from 'mysql2/promise';
import { MySQLTokenStore } from '../src/index.js';

let serverUrl: Promise<string> | null = null;

/** MYSQL_URL (set by jest's global setup), else the usual server or a throwaway one (for the demo). */
export function mysqlUrl(): Promise<string> {
  const fromEnv = process.env[MYSQL_URL_ENV];
  serverUrl ??= fromEnv ? Promise.resolve(fromEnv) : ensureMySQL().then((service) => service.url);
  return serverUrl;
}

/** A table name no other test run uses. */
export function randomTable(prefix = 'crm_test'): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

/** Drops a table on the test server (its own connection: nothing stays open). */
export async function dropTable(table: string): Promise<void> {
  const connection = await createConnection(await mysqlUrl());
  try {
    await connection.query(`DROP TABLE IF EXISTS \`${table}\``);
  } finally {
    await connection.end();
  }
}

/** Every case gets its own random table, created by the store on first use and dropped afterwards. */
export function createConformanceOptions(): ConformanceOptions<MySQLTokenStore> {
  return {
    create: async () => new MySQLTokenStore({ uri: await mysqlUrl(), table: randomTable() }),
    reopen: async (store) => new MySQLTokenStore({ uri: await mysqlUrl(), table: store.table.table }),
    destroy: (store) => dropTable(store.table.table),
  };
}
