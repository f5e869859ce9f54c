/**
 * The conformance options of this store, loadable outside jest (the suite's worker processes import this
 * file): one configuration on a table the store creates, one on Zoho DBStore's own varchar(255) table.
 */
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

/** Runs statements on the test server over a connection of their own (nothing stays open). */
export async function adminQuery(...statements: string[]): Promise<void> {
  const connection = await createConnection(await mysqlUrl());
  try {
    for (const statement of statements) await connection.query(statement);
  } finally {
    await connection.end();
  }
}

export const dropTable = (table: string) => adminQuery(`DROP TABLE IF EXISTS \`${table}\``);

/** Zoho DBStore's documented table, exactly as its README creates it (server's default charset and collation). */
export const zohoCreateTable = (table: string) =>
  `CREATE TABLE ${table} (id varchar(10) NOT NULL, user_name varchar(255), client_id varchar(255), client_secret varchar(255), refresh_token varchar(255), access_token varchar(255), grant_token varchar(255), expiry_time varchar(20), redirect_url varchar(255), api_domain varchar(255), primary key (id));`;

/** What Zoho's table holds, in characters, per column. */
const ZOHO_LIMITS = {
  id: 10,
  user_name: 255,
  client_id: 255,
  client_secret: 255,
  refresh_token: 255,
  access_token: 255,
  grant_token: 255,
  expiry_time: 20,
  redirect_url: 255,
  api_domain: 255,
};

/**
 * Makes every later write to the table fail inside the server with a message that quotes the token
 * (as a careless trigger would): the store's error and its cause must still hold no secret.
 */
export async function addFailingTriggers(table: string): Promise<void> {
  // SIGNAL takes a variable, not an expression: the message is built in a DECLARE first.
  const body =
    "BEGIN DECLARE message TEXT DEFAULT CONCAT('bad ', COALESCE(NEW.access_token, NEW.refresh_token, NEW.grant_token, '')); " +
    "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = message; END";
  await adminQuery(
    ...['INSERT', 'UPDATE'].map(
      (event) => `CREATE TRIGGER \`${table}_fault_${event.toLowerCase()}\` BEFORE ${event} ON \`${table}\` FOR EACH ROW ${body}`,
    ),
  );
}

/** What a worker process needs to open a store over the same table. */
interface SharedTable {
  url: string;
  table: string;
}

function options(createTable: (table: string) => Promise<void>): ConformanceOptions<MySQLTokenStore> {
  return {
    create: async () => {
      const table = randomTable();
      await createTable(table);
      return new MySQLTokenStore({ url: await mysqlUrl(), table });
    },
    reopen: async (store) => new MySQLTokenStore({ url: await mysqlUrl(), table: store.table.table }),
    destroy: (store) => dropTable(store.table.table),
    injectFault: async (store) => {
      await store.getTokens(); // the store creates its table on first use
      await addFailingTriggers(store.table.table);
    },
    share: async (store): Promise<SharedTable> => ({ url: await mysqlUrl(), table: store.table.table }),
    openShared: (description) => new MySQLTokenStore(description as SharedTable),
  };
}

/** Every case gets its own random table, created by the store on first use and dropped afterwards. */
export function createConformanceOptions(): ConformanceOptions<MySQLTokenStore> {
  return options(async () => {});
}

/** The same on Zoho DBStore's unmigrated table: no unique user name index, case-insensitive, varchar(255). */
export function createZohoTableOptions(): ConformanceOptions<MySQLTokenStore> {
  return { ...options((table) => adminQuery(zohoCreateTable(table))), valueLimits: ZOHO_LIMITS };
}
