/**
 * The key layout and the hash format, in one place. Every key of a store starts with `{prefix}:` so that
 * all of them share one Redis Cluster hash slot and a Lua script may touch any of them:
 *
 *   {prefix}:token:<id>                          hash: Zoho's column names → values (absent fields not stored)
 *   {prefix}:ids                                 sorted set: every id, scored by insertion order
 *   {prefix}:seq                                 counter behind those scores
 *   {prefix}:idx:<column>:<sha1 hex of value>    sorted set: ids whose <column> holds that value
 *
 * Index keys name a digest, never the value itself: values can be 64 KB, binary-unsafe for tools, and are
 * secrets. Lookups compare the stored value too, so a digest collision can never return the wrong token.
 */
import {
  LOOKUP_COLUMNS,
  type OAuthToken,
  TOKEN_COLUMNS,
  TokenStoreError,
  type TokenStoreOperation,
  tokenFromRow,
  tokenToRow,
} from '@crm/core';

export const STORE = 'RedisTokenStore';
export const DEFAULT_PREFIX = 'crm-tokens';

/** Letters, digits and `: _ . -`: nothing that is a glob character, a hash-tag brace, a quote or a space. */
export const PREFIX_PATTERN = /^[A-Za-z0-9:_.-]{1,100}$/;

/** The hash columns a save passes to the script, in Zoho's order (the id travels separately). */
export const VALUE_COLUMNS = TOKEN_COLUMNS.filter((column) => column !== 'id');

/** The columns with an index, from core's lookup rules. */
export const INDEXED_COLUMNS = Object.values(LOOKUP_COLUMNS);

export interface StoreKeys {
  /** `{prefix}:`, the start of every key; the scripts build the other names from it. */
  base: string;
  ids: string;
  seq: string;
  /** SCAN MATCH pattern for every key of this store and no other. */
  scanPattern: string;
  token(id: string): string;
}

export function checkPrefix(prefix: unknown, operation: TokenStoreOperation): string {
  if (typeof prefix !== 'string' || !PREFIX_PATTERN.test(prefix)) {
    throw TokenStoreError.invalidArgument(
      { store: STORE, operation },
      'prefix must be 1 to 100 characters of letters, digits, ":", "_", "." or "-"',
    );
  }
  return prefix;
}

/** Escapes Redis glob characters, so a pattern matches its text literally. */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

export function storeKeys(prefix: string): StoreKeys {
  const base = `{${prefix}}:`;
  return {
    base,
    ids: `${base}ids`,
    seq: `${base}seq`,
    scanPattern: `${escapeGlob(base)}*`,
    token: (id) => `${base}token:${id}`,
  };
}

/** The script arguments for a token's values: one per VALUE_COLUMNS entry, '' for absent (core reads '' as absent too). */
export function tokenToValues(token: OAuthToken): string[] {
  const row = tokenToRow(token);
  return VALUE_COLUMNS.map((column) => row[column] ?? '');
}

/** A token from a stored hash, given as HGETALL's object or as a script's flat [field, value, ...] list. */
export function tokenFromHash(hash: Record<string, string> | string[], operation: TokenStoreOperation): OAuthToken {
  let fields: Record<string, string>;
  if (Array.isArray(hash)) {
    fields = {};
    for (let i = 0; i + 1 < hash.length; i += 2) fields[hash[i] as string] = hash[i + 1] as string;
  } else {
    fields = hash;
  }
  return tokenFromRow(fields, STORE, operation);
}
