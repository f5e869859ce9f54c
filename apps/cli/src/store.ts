/**
 * Opening the store a command works on: `--store URL`, else `CRM_TOKEN_STORE`, else the embedded default.
 * Every command opens through `withStore`, which closes the store whatever happens, and shows the URL only
 * through `shownUrl` (its password replaced by `***`).
 */
import { openTokenStore, redactUrl, type TokenStore, TokenStoreError } from '@crm/core';
import { Option } from 'commander';

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

export interface OpenedStore {
  store: TokenStore;
  /** The URL with its password replaced by `***`. */
  shownUrl: string;
}

/**
 * Opens the store at `url`. Store packages are loaded from this command's own dependencies. A bad URL or a
 * missing package is TokenStoreError INVALID_ARGUMENT (exit 2); an unreachable server BACKEND_UNAVAILABLE.
 */
export async function openStore(url: string | undefined): Promise<OpenedStore> {
  const chosen = url ?? process.env[STORE_ENV] ?? DEFAULT_STORE_URL;
  if (chosen.trim() === '') {
    throw TokenStoreError.invalidArgument({ store: 'crm-tokens', operation: 'open' }, 'the store URL is empty');
  }
  // Loaded from here, so store packages resolve from this command's dependencies, not from core's folder.
  const store = await openTokenStore(chosen, { load: (name) => import(name) });
  return { store, shownUrl: shownUrl(chosen) };
}

/** Opens the store, runs `work` and closes the store, also when `work` fails (the work's error wins). */
export async function withStore<T>(url: string | undefined, work: (opened: OpenedStore) => Promise<T>): Promise<T> {
  const opened = await openStore(url);
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
