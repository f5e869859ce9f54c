/**
 * Opening the store a command works on: `--store URL`, else `CRM_TOKEN_STORE`, else the embedded default.
 * Every command opens through `withStore`, which closes the store whatever happens, and shows the URL only
 * through `shownUrl` (its password replaced by `***`).
 */
import { existsSync } from 'node:fs';
import { redactUrl, type TokenStore, TokenStoreError } from '@crm/core';
import { Option } from 'commander';
import { openStoreUrl, parseStoreUrl, type StoreLocation } from './conformance-url-options.js';
import { CommandFailure, EXIT } from './output.js';
import { probe } from './probe.js';

export const DEFAULT_STORE_URL = 'sqlite:./zohooauth.db';
export const STORE_ENV = 'CRM_TOKEN_STORE';

export const STORE_URL_HELP = `
Store URLs:
  sqlite:./zohooauth.db         SQLite file (the default), sqlite::memory: for a throwaway one
  file:./sdk_tokens.txt         Zoho's CSV token file
  postgres://user:pass@host/db  PostgreSQL (?table=, ?schema=)
  mysql://root@host:3306/db     MySQL or MariaDB (?table=)
  redis://host:6379             Redis, rediss:// with TLS (?prefix=)
  memory:                       in memory, gone when the command ends`;

/** `--store URL`, defaulting to `CRM_TOKEN_STORE`, then to the SQLite file in the current folder. */
export function storeOption(): Option {
  return new Option('--store <url>', 'the token store (see "Store URLs" below)').env(STORE_ENV).default(DEFAULT_STORE_URL);
}

/** The URL as it may be shown: its password replaced by `***`. */
export function shownUrl(url: string): string {
  return redactUrl(url);
}

/**
 * How a command opens its store:
 *   create  as an application does: a missing table or SQLite file is created (the demo);
 *   write   the storage must exist; nothing is created or altered (rm, purge);
 *   read    the same, and a SQLite file is opened read-only, so not even its journal mode changes (list, show).
 */
export type OpenMode = 'create' | 'write' | 'read';

/** The stores that would create or alter their table on open, and so take `createSchema=false`. */
const SCHEMA_KINDS: readonly string[] = ['sqlite', 'postgres', 'mysql'];

function addParam(url: string, name: string, value: string): string {
  if (new RegExp(`[?&]${name}=`).test(url)) return url;
  return `${url}${url.includes('?') ? '&' : '?'}${name}=${value}`;
}

/** The URL with `createSchema=false` where the store would otherwise create or alter its table, unless the URL says otherwise. */
export function withoutSchemaChanges(url: string): string {
  return SCHEMA_KINDS.includes(parseStoreUrl(url).kind) ? addParam(url, 'createSchema', 'false') : url;
}

/**
 * The URL for reading only: no schema changes, and a SQLite file opened read-only (a writable open switches it
 * to WAL, a lasting change to the file).
 */
export function readOnlyUrl(url: string): string {
  const location = parseStoreUrl(url);
  const unchanged = withoutSchemaChanges(url);
  return location.kind === 'sqlite' && location.filename !== ':memory:' ? addParam(unchanged, 'readonly', 'true') : unchanged;
}

/** The URL `mode` opens. */
export function urlFor(url: string, mode: OpenMode): string {
  if (mode === 'create') return url;
  return mode === 'read' ? readOnlyUrl(url) : withoutSchemaChanges(url);
}

/** `table public.oauthtoken`, `the SQLite file ./zohooauth.db`: what holds the tokens of a location. */
function describeStorage(location: StoreLocation): string {
  switch (location.kind) {
    case 'sqlite':
      return `no token table ${location.table ?? 'oauthtoken'} in the SQLite file ${location.filename}`;
    case 'file':
      return `no token file ${location.filename}`;
    case 'postgres':
      return `no token table ${location.schema ?? 'public'}.${location.table ?? 'oauthtoken'}`;
    case 'mysql':
      return `no token table ${location.table ?? 'oauthtoken'}`;
    case 'redis':
      return `no keys under the prefix ${location.prefix ?? 'crm-tokens'} (Redis keeps nothing for a store without tokens)`;
    default:
      return 'no token storage';
  }
}

/**
 * Refuses a store whose storage is not there (a mistyped table, prefix or file): exit 3 with what to check and
 * how to create it, instead of creating it or reporting an empty store. An unreachable one exits 3 too.
 */
export async function requireStorage(url: string): Promise<void> {
  const location = parseStoreUrl(url);
  if (location.kind === 'memory' || location.filename === ':memory:') return;
  const found = await probe(location);
  const shown = redactUrl(url);
  if (!found.reachable) {
    const failed = found.checks.find((check) => check.status === 'fail');
    throw new CommandFailure(`cannot use ${shown}: ${failed?.detail ?? 'it could not be reached'}`, EXIT.unavailable);
  }
  if (found.storagePresent) return;
  if (location.kind === 'sqlite' && location.filename !== undefined && !existsSync(location.filename)) {
    throw new CommandFailure(
      `no SQLite file ${location.filename} (${shown}); check the path, or create it with any save: crm-tokens demo --store '${shown}' (or your application saving a token)`,
      EXIT.unavailable,
    );
  }
  throw new CommandFailure(
    `${describeStorage(location)} in ${shown}; check the URL, or create it with any save: crm-tokens demo --store '${shown}' (or your application saving a token)`,
    EXIT.unavailable,
  );
}

export interface OpenedStore {
  store: TokenStore;
  /** The URL with its password replaced by `***`. */
  shownUrl: string;
}

/**
 * Opens the store at `url` as `mode` says; in `read` and `write` mode a store whose table, file or key prefix
 * is missing is refused (exit 3). A bad URL or a missing package is TokenStoreError INVALID_ARGUMENT (exit 2);
 * an unreachable server BACKEND_UNAVAILABLE (exit 3).
 */
export async function openStore(url: string | undefined, mode: OpenMode = 'create'): Promise<OpenedStore> {
  const chosen = url ?? process.env[STORE_ENV] ?? DEFAULT_STORE_URL;
  if (chosen.trim() === '') {
    throw TokenStoreError.invalidArgument({ store: 'crm-tokens', operation: 'open' }, 'the store URL is empty');
  }
  parseStoreUrl(chosen);
  if (mode !== 'create') await requireStorage(chosen);
  const store = await openStoreUrl(urlFor(chosen, mode));
  return { store, shownUrl: shownUrl(chosen) };
}

/** Opens the store, runs `work` and closes the store, also when `work` fails (the work's error wins). */
export async function withStore<T>(
  url: string | undefined,
  work: (opened: OpenedStore) => Promise<T>,
  mode: OpenMode = 'create',
): Promise<T> {
  const opened = await openStore(url, mode);
  let result: T;
  try {
    result = await work(opened);
  } catch (error) {
    await opened.store.close?.().catch(() => {});
    throw error;
  }
  await opened.store.close?.();
  return result;
}
