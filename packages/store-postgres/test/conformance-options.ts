/**
 * How the conformance suite (and the demo) gets PostgreSQL stores: each over its own random table in the
 * schema `crm_conformance`, dropped again by `destroy`. No jest globals here: it also runs outside jest.
 */
import { randomBytes } from 'node:crypto';
import type { ConformanceOptions } from '@crm/store-conformance';
import { ensurePostgres, POSTGRES_URL_ENV } from '@crm/test-services/postgres';
import pg from 'pg';
import { PostgresTokenStore } from '../src/index.js';

const SCHEMA = 'crm_conformance';
let serverUrl: Promise<string> | null = null;

/** POSTGRES_URL when set (jest's global setup sets it), else a server found or started once per process. */
export function postgresUrl(): Promise<string> {
  const fromEnv = process.env[POSTGRES_URL_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return Promise.resolve(fromEnv);
  serverUrl ??= ensurePostgres().then((service) => service.url);
  return serverUrl;
}

/** Drops one store's table with a connection of its own. */
export async function dropTable(url: string, schema: string, table: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP TABLE IF EXISTS "${schema}"."${table}"`);
  } finally {
    await client.end();
  }
}

const urls = new WeakMap<PostgresTokenStore, string>();

export function createConformanceOptions(): ConformanceOptions<PostgresTokenStore> {
  const open = (url: string, table: string) => {
    const store = new PostgresTokenStore({ connectionString: url, schema: SCHEMA, table, poolConfig: { max: 4 } });
    urls.set(store, url);
    return store;
  };
  return {
    async create() {
      return open(await postgresUrl(), `tokens_${randomBytes(6).toString('hex')}`);
    },
    reopen(store) {
      return open(urls.get(store) as string, store.table);
    },
    async destroy(store) {
      await dropTable(urls.get(store) as string, store.schema, store.table);
    },
  };
}
