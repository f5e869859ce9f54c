/**
 * How the conformance suite (and the demo) gets PostgreSQL stores: each over its own random table in the
 * schema `crm_conformance`, dropped again by `destroy`. No jest globals here: it also runs outside jest,
 * and worker processes of the `processes` group load it to open a store over a shared table.
 */
import { randomBytes } from 'node:crypto';
import { TokenStoreError, type TokenStoreErrorCode } from '@crm/core';
import { driverErrorCode } from '@crm/core/store-kit';
import type { ConformanceOptions } from '@crm/store-conformance';
import { ensurePostgres, POSTGRES_URL_ENV } from '@crm/test-services/postgres';
import pg from 'pg';
import { PostgresTokenStore } from '../src/index.js';

const SCHEMA = 'crm_conformance';
/** The schema the package's own tests work in; each test uses a random table in it. */
export const TEST_SCHEMA = 'crm_store_tests';
let serverUrl: Promise<string> | null = null;

/** POSTGRES_URL when set (jest's global setup sets it), else a server found or started once per process. */
export function postgresUrl(): Promise<string> {
  const fromEnv = process.env[POSTGRES_URL_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return Promise.resolve(fromEnv);
  serverUrl ??= ensurePostgres().then((service) => service.url);
  return serverUrl;
}

/** Runs SQL on a connection of its own (to inspect or tamper with a table behind the store's back). */
export async function adminQuery<Row extends Record<string, unknown>>(url: string, text: string, values: unknown[] = []): Promise<Row[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<Row>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/**
 * Creates the tests' schema when it is missing. `CREATE SCHEMA IF NOT EXISTS` is not safe against itself: two
 * sessions running it at once on a server without the schema can both miss it, and the later fails with 23505.
 * A schema that someone else created meanwhile is what was wanted.
 */
export async function ensureTestSchema(url: string): Promise<void> {
  await adminQuery(url, `CREATE SCHEMA IF NOT EXISTS "${TEST_SCHEMA}"`).catch((error: unknown) => {
    const code = driverErrorCode(error);
    if (code !== '23505' && code !== '42P06') throw error;
  });
}

/** Drops one store's table, and the fault trigger's function and sequence if `injectFault` made them. */
export async function dropTable(url: string, schema: string, table: string): Promise<void> {
  await adminQuery(
    url,
    `DROP TABLE IF EXISTS "${schema}"."${table}"; DROP FUNCTION IF EXISTS "${schema}"."${table}_fault"(); DROP SEQUENCE IF EXISTS "${schema}"."${table}_fault"`,
  );
}

/**
 * Makes the next insert or update of the store's table fail on the server with an error whose message,
 * detail and hint quote the row's secrets, as a careless trigger of a team's own would. One-shot: a
 * sequence (not rolled back with the failed statement) lets only its first call raise.
 */
export async function addFaultTrigger(store: PostgresTokenStore, url: string): Promise<void> {
  await store.migrate();
  const name = `"${store.schema}"."${store.table}_fault"`;
  await adminQuery(
    url,
    `CREATE SEQUENCE ${name};
     CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
       IF nextval('${name}') = 1 THEN
         RAISE EXCEPTION 'refusing access token %, refresh token %', NEW.access_token, NEW.refresh_token
           USING DETAIL = format('client secret %s, grant token %s', NEW.client_secret, NEW.grant_token),
                 HINT = format('row %s', NEW);
       END IF;
       RETURN NEW;
     END $$;
     CREATE TRIGGER "${store.table}_fault" BEFORE INSERT OR UPDATE ON ${store.qualifiedTable}
       FOR EACH ROW EXECUTE FUNCTION ${name}()`,
  );
}

export function randomTable(prefix = 'tokens'): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

/** The TokenStoreError code a promise rejects with; fails when it resolves or throws something else. */
export async function errorCode(promise: Promise<unknown>): Promise<TokenStoreErrorCode> {
  try {
    await promise;
  } catch (error) {
    if (TokenStoreError.is(error)) return error.code;
    throw new Error(`expected a TokenStoreError, got ${String(error)}`);
  }
  throw new Error('expected the operation to fail');
}

const urls = new WeakMap<PostgresTokenStore, string>();

interface SharedTable {
  url: string;
  schema: string;
  table: string;
}

function open({ url, schema, table }: SharedTable): PostgresTokenStore {
  const store = new PostgresTokenStore({ url, schema, table, poolConfig: { max: 4 } });
  urls.set(store, url);
  return store;
}

const describe = (store: PostgresTokenStore): SharedTable => ({ url: urls.get(store) as string, schema: store.schema, table: store.table });

export function createConformanceOptions(): ConformanceOptions<PostgresTokenStore> {
  return {
    async create() {
      return open({ url: await postgresUrl(), schema: SCHEMA, table: randomTable() });
    },
    reopen: (store) => open(describe(store)),
    async destroy(store) {
      await dropTable(urls.get(store) as string, store.schema, store.table);
    },
    injectFault: (store) => addFaultTrigger(store, urls.get(store) as string),
    share: describe,
    openShared: (description) => open(description as SharedTable),
  };
}
