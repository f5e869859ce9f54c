/**
 * Store URLs for the commands that need more than an open store (`conformance`, `doctor`, `migrate`): what a
 * URL names (kind, file, table, schema, prefix), and conformance options that give every case fresh storage
 * of the URL's kind. The suite's worker processes load this file (built as `dist/conformance-url-options.js`):
 * they call `createConformanceOptions()`, which reads the base URL from `CRM_CONFORMANCE_URL`, inherited from
 * the command that started them, and open the storage each case shares with them.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openTokenStore, parseStoreUrl as parseCoreStoreUrl, type TokenStore, TokenStoreError } from '@crm/core';
import type { ConformanceOptions } from '@crm/store-conformance';
import { redactText } from './redact.js';

/** The base URL the worker processes read. */
export const CONFORMANCE_URL_ENV = 'CRM_CONFORMANCE_URL';

export type StoreKind = 'memory' | 'sqlite' | 'file' | 'postgres' | 'mysql' | 'redis';

/** Where a store URL points. `serverUrl` may hold a password: never print it, show `redactUrl(url)`. */
export interface StoreLocation {
  kind: StoreKind;
  /** The store package that opens it. */
  packageName: string | null;
  /** SQLite and CSV file: the file (`:memory:` for an in-memory SQLite database). */
  filename?: string;
  table?: string;
  schema?: string;
  prefix?: string;
  /** PostgreSQL, MySQL, Redis: the URL without the store's parameters (table, schema, prefix, operationTimeoutMs...). */
  serverUrl?: string;
  /** The store's other parameters as written in the URL (`operationTimeoutMs`, `journalMode`, ...), kept by `storeUrl`. */
  params?: Record<string, string>;
}

/** Core's store names, by the kind the commands branch on. */
const KINDS: Record<string, StoreKind> = {
  MemoryTokenStore: 'memory',
  SQLiteTokenStore: 'sqlite',
  FileTokenStore: 'file',
  PostgresTokenStore: 'postgres',
  MySQLTokenStore: 'mysql',
  RedisTokenStore: 'redis',
};

/** True when `text` starts like a store URL (`scheme:`), as opposed to a module path. */
export function looksLikeStoreUrl(text: string): boolean {
  return /^[A-Za-z][A-Za-z0-9+.-]*:/.test(text) && !/^[A-Za-z]:[\\/]/.test(text);
}

/**
 * What a store URL names, read by core's `parseStoreUrl` (the same rules as `openTokenStore`: unknown or
 * repeated parameters refused, typed values checked). A URL it refuses is its INVALID_ARGUMENT, which never
 * repeats the URL whole.
 */
export function parseStoreUrl(url: string): StoreLocation {
  const target = parseCoreStoreUrl(url);
  const kind = KINDS[target.storeName];
  if (kind === undefined)
    throw TokenStoreError.invalidArgument(
      { store: 'crm-tokens', operation: 'open' },
      `${target.storeName} is not a store this command knows`,
    );
  const options = target.options as { filename?: string; table?: string; schema?: string; prefix?: string; url?: string };
  const location: StoreLocation = { kind, packageName: target.packageName };
  if (options.filename !== undefined) location.filename = options.filename;
  if (options.table !== undefined) location.table = options.table;
  if (options.schema !== undefined) location.schema = options.schema;
  if (options.prefix !== undefined) location.prefix = options.prefix;
  if (options.url !== undefined) location.serverUrl = options.url;
  const located = new Set(['filename', 'table', 'schema', 'prefix', 'url']);
  const params = Object.entries(target.options).filter(([name]) => !located.has(name));
  if (params.length > 0) location.params = Object.fromEntries(params.map(([name, value]) => [name, String(value)]));
  return location;
}

/** The URL of a location, the inverse of `parseStoreUrl`: its file, table, schema or prefix, and every other store parameter. */
export function storeUrl(location: StoreLocation): string {
  if (location.kind === 'memory') return 'memory:';
  const named = { table: location.table, schema: location.schema, prefix: location.prefix, ...location.params };
  const params = Object.entries(named).filter((entry): entry is [string, string] => entry[1] !== undefined);
  if (location.kind === 'sqlite' || location.kind === 'file') {
    const query = new URLSearchParams(params).toString();
    return `${location.kind}:${location.filename}${query === '' ? '' : `?${query}`}`;
  }
  const url = new URL(location.serverUrl as string);
  for (const [name, value] of params) url.searchParams.set(name, value);
  return url.href;
}

/** A dynamic import from this module, so store packages resolve from the command's own dependencies. */
const load = (name: string): Promise<unknown> => import(name);

/**
 * Opens a store from its URL with core's `openTokenStore`, loading store packages from the command's
 * dependencies. A driver that refuses an option of the URL when the store is made (mysql2's `?ssl=foo`)
 * throws its own error: that is a bad URL, INVALID_ARGUMENT (exit 2), its message without the URL's password.
 */
export async function openStoreUrl(url: string): Promise<TokenStore> {
  try {
    return await openTokenStore(url, { load });
  } catch (error) {
    if (TokenStoreError.is(error)) throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw TokenStoreError.invalidArgument(
      { store: 'crm-tokens', operation: 'open' },
      `the store URL's options were refused when opening it: ${redactText(hidePassword(message, url), [url])}`,
    );
  }
}

/** `text` without the URL's password, should a driver ever quote it. */
function hidePassword(text: string, url: string): string {
  try {
    const password = decodeURIComponent(new URL(url).password);
    return password.length > 0 ? text.split(password).join('***') : text;
  } catch {
    return text;
  }
}

/** Refuses, as openTokenStore would, a location whose store package is not installed (INVALID_ARGUMENT, exit 2). */
export function checkStorePackage(location: StoreLocation): void {
  if (location.packageName === null) return;
  try {
    requireHere.resolve(location.packageName);
  } catch {
    throw TokenStoreError.invalidArgument(
      { store: 'crm-tokens', operation: 'open' },
      `a ${location.kind} store URL needs ${location.packageName}: npm install ${location.packageName}`,
    );
  }
}

const requireHere = createRequire(import.meta.url);

/** A database driver as the store package that uses it resolves it (the command does not depend on drivers itself). */
export function loadDriver<Driver>(storePackage: string, driver: string): Driver {
  return createRequire(requireHere.resolve(storePackage))(driver) as Driver;
}

interface PgClient {
  connect(): Promise<void>;
  query(text: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
  end(): Promise<void>;
  on(event: 'error', listener: () => void): void;
}
type PgModule = { Client: new (options: { connectionString: string; connectionTimeoutMillis?: number }) => PgClient };

/** A connection of its own to the PostgreSQL server of `serverUrl`, through the store's `pg`. */
export async function pgConnect(serverUrl: string, timeoutMs = 5000): Promise<PgClient> {
  const pg = loadDriver<PgModule & { default?: PgModule }>('@crm/store-postgres', 'pg');
  const client = new (pg.default ?? pg).Client({ connectionString: serverUrl, connectionTimeoutMillis: timeoutMs });
  client.on('error', () => {});
  await client.connect();
  return client;
}

interface MySqlConnection {
  query(text: string, values?: unknown[]): Promise<[unknown, unknown]>;
  end(): Promise<void>;
  on(event: 'error', listener: () => void): void;
}

/** A connection of its own to the MySQL server of `serverUrl`, through the store's `mysql2`. */
export async function mysqlConnect(serverUrl: string, timeoutMs = 5000): Promise<MySqlConnection> {
  const mysql = loadDriver<{ createConnection(options: Record<string, unknown>): Promise<MySqlConnection> }>(
    '@crm/store-mysql',
    'mysql2/promise',
  );
  const url = new URL(serverUrl);
  const connection = await mysql.createConnection({
    host: url.hostname || 'localhost',
    port: Number(url.port || 3306),
    user: decodeURIComponent(url.username || 'root'),
    password: decodeURIComponent(url.password),
    database: decodeURIComponent(url.pathname.slice(1)) || 'zohooauth',
    connectTimeout: timeoutMs,
  });
  connection.on('error', () => {});
  return connection;
}

interface RedisClient {
  connect(): Promise<void>;
  scan(cursor: string, ...args: (string | number)[]): Promise<[string, string[]]>;
  del(...keys: string[]): Promise<number>;
  quit(): Promise<unknown>;
  disconnect(): void;
  call(command: string, ...args: (string | number)[]): Promise<unknown>;
  on(event: 'error', listener: () => void): void;
}

/** A connection of its own to the Redis server of `serverUrl` (one attempt, no retries), through the store's `ioredis`. */
export async function redisConnect(serverUrl: string, timeoutMs = 5000): Promise<RedisClient> {
  const ioredis = loadDriver<{ Redis: new (url: string, options: Record<string, unknown>) => RedisClient }>('@crm/store-redis', 'ioredis');
  const client = new ioredis.Redis(serverUrl, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    throw error;
  }
  return client;
}

/** Double-quotes a PostgreSQL identifier. */
export const pgIdentifier = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** Removes the storage a case used: its temporary folder, table or key prefix. */
async function removeStorage(location: StoreLocation): Promise<void> {
  if (location.kind === 'sqlite' || location.kind === 'file') {
    rmSync(dirname(location.filename as string), { recursive: true, force: true });
  } else if (location.kind === 'postgres') {
    const client = await pgConnect(location.serverUrl as string);
    try {
      await client.query(`DROP TABLE IF EXISTS ${pgIdentifier(location.schema ?? 'public')}.${pgIdentifier(location.table as string)}`);
    } finally {
      await client.end();
    }
  } else if (location.kind === 'mysql') {
    const connection = await mysqlConnect(location.serverUrl as string);
    try {
      await connection.query(`DROP TABLE IF EXISTS \`${location.table}\``);
    } finally {
      await connection.end();
    }
  } else if (location.kind === 'redis') {
    const client = await redisConnect(location.serverUrl as string);
    try {
      let cursor = '0';
      do {
        // The prefix is ours: letters, digits, ':' and '-', nothing a glob pattern treats specially.
        const [next, keys] = await client.scan(cursor, 'MATCH', `{${location.prefix}}:*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await client.del(...keys);
      } while (cursor !== '0');
    } finally {
      await client.quit().catch(() => client.disconnect());
    }
  }
}

const random = () => randomBytes(6).toString('hex');

/** The location of fresh storage of the same kind: a temporary file, a random table, a random key prefix. */
function freshLocation(base: StoreLocation): StoreLocation {
  switch (base.kind) {
    case 'sqlite':
      return { ...base, filename: join(mkdtempSync(join(tmpdir(), 'crm-conformance-')), 'tokens.db') };
    case 'file':
      return { ...base, filename: join(mkdtempSync(join(tmpdir(), 'crm-conformance-')), 'sdk_tokens.txt') };
    case 'postgres':
    case 'mysql':
      return { ...base, table: `crm_conformance_${random()}` };
    case 'redis':
      return { ...base, prefix: `${base.prefix ?? 'crm-conformance'}:${random()}` };
    default:
      return base;
  }
}

/** This file as built (`dist/conformance-url-options.js`), which worker processes load; null when run from source. */
export function conformanceModule(): string | null {
  const path = join(dirname(fileURLToPath(import.meta.url)), 'conformance-url-options.js');
  return existsSync(path) ? path : null;
}

/**
 * Conformance options for the kind of store `baseUrl` names. Every case gets fresh storage of that kind (the
 * file, table or prefix the URL names is never touched): a temporary SQLite or CSV file, a random table in
 * the URL's PostgreSQL schema or MySQL database, a random prefix under the URL's Redis prefix. `share`
 * describes a case's storage as its URL, which the worker processes open. Memory and `sqlite::memory:` live
 * in one process: the `processes` group is switched off for them.
 */
export function urlConformanceOptions(baseUrl: string): ConformanceOptions {
  const base = parseStoreUrl(baseUrl);
  const inMemory = base.kind === 'memory' || base.filename === ':memory:';
  if (inMemory) return { create: () => openStoreUrl(baseUrl), sharedAcrossProcesses: false };
  const locations = new WeakMap<TokenStore, StoreLocation>();
  const open = async (location: StoreLocation) => {
    const store = await openStoreUrl(storeUrl(location));
    locations.set(store, location);
    return store;
  };
  const locationOf = (store: TokenStore) => {
    const location = locations.get(store);
    if (location === undefined) throw new Error('this store was not opened by these conformance options');
    return location;
  };
  const module = conformanceModule();
  return {
    create: () => open(freshLocation(base)),
    reopen: (store) => open(locationOf(store)),
    destroy: (store) => removeStorage(locationOf(store)),
    share: (store) => storeUrl(locationOf(store)),
    openShared: (description) => open(parseStoreUrl(description as string)),
    ...(module === null ? { sharedAcrossProcesses: false } : { module }),
  };
}

/** What worker processes call: the options for the base URL their parent put in `CRM_CONFORMANCE_URL`. */
export function createConformanceOptions(): ConformanceOptions {
  const baseUrl = process.env[CONFORMANCE_URL_ENV];
  if (!baseUrl) throw new Error(`${CONFORMANCE_URL_ENV} is not set: the command that runs the suite sets it for its worker processes`);
  return urlConformanceOptions(baseUrl);
}
