import { randomFillSync } from 'node:crypto';
import { TokenStoreError, type TokenStoreOperation } from './errors.js';
import { OAuthToken, SECRET_FIELDS, TOKEN_FIELDS } from './token.js';

/** The one stored field a lookup compares, and the value it must equal. */
export type LookupKey =
  | { field: 'userName'; value: string }
  | { field: 'accessToken'; value: string }
  | { field: 'grantToken'; value: string }
  | { field: 'refreshToken'; value: string };

export type LookupField = LookupKey['field'];

/** Zoho's column for each lookup field. */
export const LOOKUP_COLUMNS: Record<LookupField, string> = {
  userName: 'user_name',
  accessToken: 'access_token',
  grantToken: 'grant_token',
  refreshToken: 'refresh_token',
};

/**
 * The findToken rules, first that applies wins:
 * 1. a user name: by user name only;
 * 2. else an access token and neither client id nor secret: by access token;
 * 3. else a grant or refresh token with both client id and secret: by grant token if given, else refresh token;
 * 4. else nothing identifies the token: null (no lookup at all).
 */
export function lookupKey(token: OAuthToken): LookupKey | null {
  const userName = token.userSignature?.name ?? null;
  if (userName !== null) return { field: 'userName', value: userName };
  if (token.accessToken !== null && token.clientId === null && token.clientSecret === null) {
    return { field: 'accessToken', value: token.accessToken };
  }
  if (token.clientId !== null && token.clientSecret !== null) {
    if (token.grantToken !== null) return { field: 'grantToken', value: token.grantToken };
    if (token.refreshToken !== null) return { field: 'refreshToken', value: token.refreshToken };
  }
  return null;
}

/** True when the stored token holds the key's value in the key's field (exact, case-sensitive). */
export function matchesLookupKey(stored: OAuthToken, key: LookupKey): boolean {
  const value = key.field === 'userName' ? (stored.userSignature?.name ?? null) : stored[key.field];
  return value === key.value;
}

/** findToken's merge: every field `target` leaves absent is taken from `stored`. Returns `target`. */
export function fillAbsentFields(target: OAuthToken, stored: OAuthToken): OAuthToken {
  for (const field of TOKEN_FIELDS) {
    if (target[field] === null) (target as unknown as Record<string, unknown>)[field] = stored[field];
  }
  return target;
}

/** saveToken's merge: a new token with the stored id, the token's present fields, and stored values elsewhere. */
export function mergeForSave(stored: OAuthToken, token: OAuthToken): OAuthToken {
  const merged = stored.clone();
  for (const field of TOKEN_FIELDS) {
    if (field !== 'id' && token[field] !== null) (merged as unknown as Record<string, unknown>)[field] = token[field];
  }
  return merged;
}

/** After a save, the caller's object holds exactly what was stored, id included. */
export function copyStoredFields(target: OAuthToken, stored: OAuthToken): void {
  for (const field of TOKEN_FIELDS) (target as unknown as Record<string, unknown>)[field] = stored[field];
}

/** A token can be stored only if it carries an access, refresh or grant token. */
export function isSaveable(token: OAuthToken): boolean {
  return token.accessToken !== null || token.refreshToken !== null || token.grantToken !== null;
}

const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** Length of generated ids: fits Zoho's `varchar(10)` id column. */
export const TOKEN_ID_LENGTH = 10;

/**
 * A new token id: 10 random base-62 characters (about 59 bits), unique without coordination between
 * processes. Zoho's `max(id) + 1` collides under concurrency and, on text columns, after id 9.
 */
export function newTokenId(): string {
  // 248 is the largest multiple of 62 below 256: rejecting bytes above it keeps every character equally likely.
  let id = '';
  while (id.length < TOKEN_ID_LENGTH) {
    const byte = nextRandomByte();
    if (byte < 248) id += ID_ALPHABET[byte % 62];
  }
  return id;
}

// Random bytes for ids are drawn 1 KiB at a time: one call to the system's generator per ~90 ids instead of
// one per id, which costs as much as the rest of a save on a busy machine. Every byte is used once.
const randomPool = Buffer.alloc(1024);
let randomPoolOffset = randomPool.length;

function nextRandomByte(): number {
  if (randomPoolOffset === randomPool.length) {
    randomFillSync(randomPool);
    randomPoolOffset = 0;
  }
  return randomPool[randomPoolOffset++] as number;
}

/**
 * Checks the argument of findToken and saveToken: an OAuthToken whose fields are well-typed. Fields
 * assigned `''` after construction are set to null, as the constructor would have: an empty string is
 * absent everywhere, so it never matches a stored column and never counts as token material.
 */
export function checkTokenArgument(token: unknown, store: string, operation: TokenStoreOperation): asserts token is OAuthToken {
  if (!OAuthToken.isToken(token)) {
    throw TokenStoreError.invalidArgument({ store, operation }, 'expected an OAuthToken');
  }
  let checked: OAuthToken;
  try {
    checked = new OAuthToken(token.toFields());
  } catch (error) {
    const reason = TokenStoreError.is(error) ? error.message.replace(/^[^:]*: /, '') : 'invalid field';
    throw TokenStoreError.invalidArgument({ store, operation }, reason);
  }
  if (Object.isFrozen(token))
    throw TokenStoreError.invalidArgument({ store, operation }, 'the token must not be frozen: stores write into it');
  // The checked values go back into the caller's object: '' becomes null, a look-alike signature a real one.
  for (const field of TOKEN_FIELDS) (token as unknown as Record<string, unknown>)[field] = checked[field];
}

/** The secret values a token carries, for `TokenStoreError`'s `secrets` (removed from a driver error's cause). */
export function tokenSecrets(token: OAuthToken): string[] {
  const secrets: string[] = [];
  for (const field of SECRET_FIELDS) {
    const value = token[field];
    if (typeof value === 'string') secrets.push(value);
  }
  return secrets;
}

/** Checks the argument of saveToken: a valid token that carries an access, refresh or grant token. */
export function checkSaveArgument(token: unknown, store: string): asserts token is OAuthToken {
  checkTokenArgument(token, store, 'saveToken');
  if (!isSaveable(token)) {
    throw TokenStoreError.invalidToken({ store, operation: 'saveToken' }, 'a token needs an access, refresh or grant token to be saved');
  }
}

/** Checks an id argument: a non-empty string that a store can keep (no NUL, no lone surrogate). */
export function checkIdArgument(id: unknown, store: string, operation: TokenStoreOperation): asserts id is string {
  if (typeof id !== 'string' || id.length === 0) {
    throw TokenStoreError.invalidArgument({ store, operation }, 'id must be a non-empty string');
  }
  try {
    new OAuthToken({ id });
  } catch {
    throw TokenStoreError.invalidArgument({ store, operation }, 'id holds a character no store can keep (NUL or a lone surrogate)');
  }
}

/** Read access to a set of stored tokens, for stores that decide a save in memory (under their own lock). */
export interface TokenLookup {
  findById(id: string): OAuthToken | null;
  findByKey(key: LookupKey): OAuthToken | null;
}

/** What a save writes: `stored` is the complete token to keep; `replaces` the stored token it updates, if any. */
export interface SavePlan {
  stored: OAuthToken;
  replaces: OAuthToken | null;
}

/**
 * Decides a save against tokens held in memory: the token with the same id, else the one the findToken
 * rules match, is updated; otherwise a new token is inserted. Throws CONFLICT when the result would share
 * its user name with another stored token. Changes nothing; the caller writes `stored` and then copies it
 * into the caller's token with `copyStoredFields`.
 */
export function planSave(tokens: TokenLookup, token: OAuthToken, store: string): SavePlan {
  const byId = token.id === null ? null : tokens.findById(token.id);
  const key = byId === null ? lookupKey(token) : null;
  const replaces = byId ?? (key === null ? null : tokens.findByKey(key));
  let stored: OAuthToken;
  if (replaces !== null) {
    stored = mergeForSave(replaces, token);
  } else {
    stored = token.clone();
    if (stored.id === null) {
      do stored.id = newTokenId();
      while (tokens.findById(stored.id) !== null);
    }
  }
  const userName = stored.userSignature?.name ?? null;
  if (userName !== null) {
    const owner = tokens.findByKey({ field: 'userName', value: userName });
    if (owner !== null && owner.id !== stored.id) {
      throw TokenStoreError.conflict({ store, operation: 'saveToken' }, 'another stored token already has this user name');
    }
  }
  return { stored, replaces };
}
