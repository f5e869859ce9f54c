/**
 * Opening the store a command works on: `--store URL`, else `CRM_TOKEN_STORE`, else the embedded default.
 * Every command opens through `withStore`, which closes the store whatever happens, and shows the URL only
 * through `shownUrl` (its password replaced by `***`).
 */
import * as core from '@crm/core';
import type { TokenStore } from '@crm/core';
import { TokenStoreError } from '@crm/core';
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

interface OpenStoreOptions {
  load?: (packageName: string) => Promise<unknown>;
}

/** The store-URL side of `@crm/core`, read by name so this module also loads with a core that lacks it. */
const storeUrls = core as unknown as {
  openTokenStore?: (url: string, options?: OpenStoreOptions) => Promise<TokenStore>;
  redactUrl?: (url: string) => string;
};

/** `--store URL`, defaulting to `CRM_TOKEN_STORE`, then to the SQLite file in the current folder. */
export function storeOption(): Option {
  return new Option('--store <url>', 'the token store (see "Store URLs" below)').env(STORE_ENV).default(DEFAULT_STORE_URL);
}

/** The URL as it may be shown: its password replaced by `***`. */
export function shownUrl(url: string): string {
  if (storeUrls.redactUrl) return storeUrls.redactUrl(url);
  // Until core has redactUrl: a URL that does not parse is shown without anything after its scheme.
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.href;
  } catch {
    return `${url.split(':')[0]}:…`;
  }
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
  if (!storeUrls.openTokenStore) {
    throw new Error('this version of @crm/core cannot open store URLs (openTokenStore is missing): update @crm/core');
  }
  const store = await storeUrls.openTokenStore(chosen, { load: (name) => import(name) });
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
