import { safeCause } from './driver-errors.js';

/**
 * The closed list of error codes. Callers branch on `code`, never on the message.
 * - INVALID_ARGUMENT: the call itself is wrong (not a token, empty id, bad option). Nothing changed.
 * - INVALID_TOKEN: the token cannot be stored (no access, refresh or grant token). Nothing changed.
 * - VALUE_TOO_LONG: a value does not fit the backend's column. Nothing changed.
 * - CONFLICT: the save would give two stored tokens the same id or user name. Nothing changed.
 * - BACKEND_UNAVAILABLE: the storage could not be reached in time (server down, file locked too long).
 * - BACKEND_FAILURE: the storage answered with an error that is none of the above.
 * - CORRUPT_DATA: stored data cannot be read back as a token. Nothing is overwritten.
 * - STORE_CLOSED: the store's `close()` was called; every later call rejects with this code.
 * - LOCK_TIMEOUT: `withLock` waited its `waitMs` and another holder still had the lock. Nothing ran.
 * - LOCK_LOST: a lock holder no longer owns its lease (it expired, the backend ended the session): it must not write.
 */
export const TOKEN_STORE_ERROR_CODES = [
  'INVALID_ARGUMENT',
  'INVALID_TOKEN',
  'VALUE_TOO_LONG',
  'CONFLICT',
  'BACKEND_UNAVAILABLE',
  'BACKEND_FAILURE',
  'CORRUPT_DATA',
  'STORE_CLOSED',
  'LOCK_TIMEOUT',
  'LOCK_LOST',
] as const;

export type TokenStoreErrorCode = (typeof TOKEN_STORE_ERROR_CODES)[number];

/**
 * Node's socket error codes that mean the server could not be reached or went away: every server store
 * maps them to BACKEND_UNAVAILABLE, next to its driver's own codes.
 */
export const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** The TokenStore method (or store phase) that failed. */
export type TokenStoreOperation =
  | 'findToken'
  | 'findTokenById'
  | 'saveToken'
  | 'deleteToken'
  | 'getTokens'
  | 'deleteTokens'
  | 'close'
  | 'open'
  | 'migrate'
  | 'withLock'
  | 'getAccessToken'
  | 'exchangeCode'
  | 'fetch'
  | 'revoke'
  | 'token';

export interface TokenStoreErrorDetails {
  /** The store's name, e.g. `SQLiteTokenStore`. */
  store: string;
  operation: TokenStoreOperation;
  /**
   * The driver's error, for debugging. Never copied into `message`, and never kept as it is: the error
   * gets a copy without the values the driver attached (command arguments, bound parameters, row details)
   * and with `secrets` and Zoho-format tokens removed from its message (see `safeCause`).
   */
  cause?: unknown;
  /** Values the failed operation was handling (the token's secrets, a lookup value), to remove from `cause`. */
  secrets?: Iterable<string | null | undefined>;
}

const ERROR_BRAND = Symbol.for('@crm/core/TokenStoreError');

/**
 * The one error class of every store. Messages name fields and operations, never values:
 * a secret must not reach a log through an error.
 */
export class TokenStoreError extends Error {
  override readonly name = 'TokenStoreError';
  readonly code: TokenStoreErrorCode;
  readonly store: string;
  readonly operation: TokenStoreOperation;

  constructor(code: TokenStoreErrorCode, message: string, details: TokenStoreErrorDetails) {
    const cause =
      details.cause === undefined
        ? undefined
        : details.cause instanceof TokenStoreError
          ? details.cause
          : safeCause(details.cause, details.secrets);
    super(`${details.store}.${details.operation}: ${message}`, cause === undefined ? undefined : { cause });
    this.code = code;
    this.store = details.store;
    this.operation = details.operation;
    Object.defineProperty(this, ERROR_BRAND, { value: true });
  }

  /** True for a TokenStoreError from any copy of this package (ESM and CommonJS builds alike). */
  static is(value: unknown): value is TokenStoreError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[ERROR_BRAND] === true;
  }

  static invalidArgument(details: TokenStoreErrorDetails, message: string): TokenStoreError {
    return new TokenStoreError('INVALID_ARGUMENT', message, details);
  }

  static invalidToken(details: TokenStoreErrorDetails, message: string): TokenStoreError {
    return new TokenStoreError('INVALID_TOKEN', message, details);
  }

  static valueTooLong(details: TokenStoreErrorDetails, column: string, limit: number): TokenStoreError {
    return new TokenStoreError('VALUE_TOO_LONG', `the value for column ${column} is longer than the column allows (${limit})`, details);
  }

  static conflict(details: TokenStoreErrorDetails, message: string): TokenStoreError {
    return new TokenStoreError('CONFLICT', message, details);
  }

  static unavailable(details: TokenStoreErrorDetails, message: string): TokenStoreError {
    return new TokenStoreError('BACKEND_UNAVAILABLE', message, details);
  }

  static failure(details: TokenStoreErrorDetails, message: string): TokenStoreError {
    return new TokenStoreError('BACKEND_FAILURE', message, details);
  }

  /** What every call on a closed store rejects with. */
  static closed(details: TokenStoreErrorDetails): TokenStoreError {
    return new TokenStoreError('STORE_CLOSED', 'the store is closed', details);
  }

  static lockTimeout(details: TokenStoreErrorDetails, waitMs: number): TokenStoreError {
    return new TokenStoreError('LOCK_TIMEOUT', `another holder kept the lock for the whole ${waitMs} ms wait`, details);
  }

  static lockLost(details: TokenStoreErrorDetails, message = 'this holder no longer owns the lock'): TokenStoreError {
    return new TokenStoreError('LOCK_LOST', message, details);
  }

  static corrupt(details: TokenStoreErrorDetails, message: string): TokenStoreError {
    return new TokenStoreError('CORRUPT_DATA', message, details);
  }
}
