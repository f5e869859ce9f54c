/**
 * The suite's options for every store the bridge is checked on, loadable outside jest: the report script
 * runs them, and the `processes` group's worker processes import this file and call `openShared`.
 * - `typescript-file`, `typescript-db`, `nodejs-file`, `nodejs-db`: Zoho's own FileStore (a temp file) and
 *   DBStore (Zoho's documented `oauthtoken` table under a random name, in MariaDB's `test` database) of each
 *   official SDK, through fromZohoTokenStore;
 * - `sqlite-bridged`: our SQLiteTokenStore through toZohoTokenStore and back through fromZohoTokenStore.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { TokenStore } from '@crm/core';
import type { ConformanceOptions } from '@crm/store-conformance';
import { SQLiteTokenStore } from '@crm/store-sqlite';
import * as typescriptSdkModule from '@zohocrm/typescript-sdk-8.0';
import Database from 'better-sqlite3';
import mysql from 'mysql';
import { fromZohoTokenStore, toZohoTokenStore, type ZohoSdk, type ZohoTokenStore } from '../src/index.js';

export const STORE_KINDS = ['typescript-file', 'typescript-db', 'nodejs-file', 'nodejs-db', 'sqlite-bridged'] as const;
export type StoreKind = (typeof STORE_KINDS)[number];

export const MARIADB = { host: '127.0.0.1', port: 3306, user: 'root', password: '', database: 'test' };

/** Zoho DBStore's table, exactly as their README creates it. */
const zohoCreateTable = (table: string) =>
  `CREATE TABLE ${table} (id varchar(10) NOT NULL, user_name varchar(255), client_id varchar(255), client_secret varchar(255), refresh_token varchar(255), access_token varchar(255), grant_token varchar(255), expiry_time varchar(20), redirect_url varchar(255), api_domain varchar(255), primary key (id));`;

const ZOHO_TABLE_LIMITS = {
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

/** What a worker process needs to open a store over the same storage. */
interface Shared {
  kind: StoreKind;
  /** The CSV or SQLite file, or the MariaDB table. */
  location: string;
}

export async function adminQuery(...statements: string[]): Promise<void> {
  const connection = mysql.createConnection(MARIADB);
  try {
    for (const statement of statements) {
      await new Promise<void>((resolve, reject) => connection.query(statement, (error) => (error ? reject(error) : resolve())));
    }
  } finally {
    await new Promise<void>((resolve) => connection.end(() => resolve()));
  }
}

type SdkWithStores = ZohoSdk & { FileStore: new (path: string) => ZohoTokenStore; DBStore: new (...args: unknown[]) => ZohoTokenStore };

/** The TypeScript SDK: CommonJS. */
export function typescriptSdk(): SdkWithStores {
  return typescriptSdkModule as unknown as SdkWithStores;
}

/** The Node.js SDK: ESM only, so loaded with import() (outside jest). */
export async function nodejsSdk(): Promise<SdkWithStores> {
  const specifier = '@zohocrm/nodejs-sdk-8.0';
  return import(specifier);
}

const sdkOf = (kind: StoreKind) => (kind.startsWith('nodejs') ? nodejsSdk() : Promise.resolve(typescriptSdk()));

/** Opens the store of `kind` over `location`; remembers where it lives for `share` and `destroy`. */
const locations = new WeakMap<TokenStore, Shared>();

async function open(shared: Shared): Promise<TokenStore> {
  let store: TokenStore;
  if (shared.kind === 'sqlite-bridged') {
    store = fromZohoTokenStore(toZohoTokenStore(new SQLiteTokenStore({ filename: shared.location })), {
      name: 'SQLiteTokenStore via the bridge',
    });
  } else {
    const sdk = await sdkOf(shared.kind);
    const zohoStore = shared.kind.endsWith('-file')
      ? new sdk.FileStore(shared.location)
      : new sdk.DBStore(MARIADB.host, MARIADB.database, shared.location, MARIADB.user, MARIADB.password, MARIADB.port);
    store = fromZohoTokenStore(zohoStore, { sdk });
  }
  locations.set(store, shared);
  return store;
}

function located(store: TokenStore): Shared {
  const shared = locations.get(store);
  if (shared === undefined) throw new Error('this store was not opened by these options');
  return shared;
}

async function create(kind: StoreKind): Promise<TokenStore> {
  if (kind.endsWith('-db')) {
    const table = `oauthtoken_${randomBytes(5).toString('hex')}`;
    await adminQuery(zohoCreateTable(table));
    return open({ kind, location: table });
  }
  const folder = mkdtempSync(join(tmpdir(), 'crm-zoho-bridge-'));
  return open({ kind, location: join(folder, kind === 'sqlite-bridged' ? 'tokens.db' : 'sdk_tokens.csv') });
}

/** A trigger that refuses every write with a message quoting the row's secrets, as a careless trigger would. */
async function addFailingTriggers(table: string): Promise<void> {
  const body =
    "BEGIN DECLARE message TEXT DEFAULT CONCAT('bad ', COALESCE(NEW.access_token, NEW.refresh_token, NEW.grant_token, ''), ' ', COALESCE(NEW.client_secret, '')); " +
    "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = message; END";
  await adminQuery(
    ...['INSERT', 'UPDATE'].map(
      (event) => `CREATE TRIGGER ${table}_fault_${event.toLowerCase()} BEFORE ${event} ON ${table} FOR EACH ROW ${body}`,
    ),
  );
}

export function createConformanceOptions(kind: StoreKind = 'sqlite-bridged'): ConformanceOptions {
  return {
    create: () => create(kind),
    reopen: (store) => open(located(store)),
    destroy: async (store) => {
      const { location } = located(store);
      if (kind.endsWith('-db')) await adminQuery(`DROP TABLE IF EXISTS ${location}`);
      else rmSync(dirname(location), { recursive: true, force: true });
    },
    injectFault: async (store) => {
      const { location } = located(store);
      if (kind.endsWith('-db')) return addFailingTriggers(location);
      if (kind === 'sqlite-bridged') {
        // SQLite's own fault: a trigger that raises quoting the row (the store must not repeat it).
        const database = new Database(location);
        try {
          await (store as TokenStore).getTokens(); // the table exists once the store was used
          database.exec(
            `CREATE TRIGGER fault_insert BEFORE INSERT ON oauthtoken BEGIN SELECT RAISE(ABORT, 'refused ' || coalesce(NEW.access_token, NEW.refresh_token, NEW.grant_token)); END;` +
              `CREATE TRIGGER fault_update BEFORE UPDATE ON oauthtoken BEGIN SELECT RAISE(ABORT, 'refused ' || coalesce(NEW.access_token, NEW.refresh_token, NEW.grant_token)); END`,
          );
        } finally {
          database.close();
        }
        return;
      }
      // Zoho's FileStore reads and rewrites its file in place: a folder where the file was fails both.
      rmSync(location, { force: true });
      mkdirSync(location);
    },
    share: (store) => located(store),
    openShared: (description) => open(description as Shared),
    ...(kind.endsWith('-db') ? { valueLimits: ZOHO_TABLE_LIMITS } : {}),
    // Their DBStore can leave a call pending until the bridge's 5 s deadline: give cases room.
    caseTimeoutMs: 60000,
  };
}

export default createConformanceOptions;
