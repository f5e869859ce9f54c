import { safeCause } from '../driver-errors.js';

/**
 * The closed list of OAuthError codes. Callers branch on `code`, never on the message.
 * - INVALID_GRANT: Zoho answered `invalid_code`: the grant token is used, expired or unknown, or the refresh
 *   token was revoked or pushed out. The user must authorise the app again.
 * - INVALID_CLIENT: unknown client id, or a wrong client secret.
 * - INVALID_REDIRECT_URI: the redirect URL is not the one the grant token was issued for.
 * - INVALID_REQUEST: Zoho refused the request's shape (`invalid_request`, `unsupported_grant_type`).
 * - THROTTLED: too many requests (`Access Denied`); `retryAfterMs` says how long to wait (from AccountsClient:
 *   the server's `Retry-After`, or null when it sent none).
 * - ACCOUNTS_ERROR: any other error answer from the accounts server (its `error` is in `accountsError`).
 * - SERVER_ERROR: the server answered with an HTTP 5xx status.
 * - NETWORK: the server could not be reached, or did not answer within `requestTimeoutMs`.
 * - ABORTED: the caller's AbortSignal ended the request.
 * - INVALID_RESPONSE: the server answered something that is not a reply of Zoho's protocol.
 * - NO_TOKEN: the store holds no token for that user name, token or id.
 * - NO_REFRESH_TOKEN: the token's access token expired and it has neither a refresh nor a grant token.
 * - MISSING_CLIENT_CREDENTIALS: neither the token nor the manager's options give a client id and secret
 *   (and, for a grant token, a redirect URL).
 * - NOT_AUTHORIZED: the API answered 401 `INVALID_OAUTHTOKEN` again after one refresh.
 */
export const OAUTH_ERROR_CODES = [
  'INVALID_GRANT',
  'INVALID_CLIENT',
  'INVALID_REDIRECT_URI',
  'INVALID_REQUEST',
  'THROTTLED',
  'ACCOUNTS_ERROR',
  'SERVER_ERROR',
  'NETWORK',
  'ABORTED',
  'INVALID_RESPONSE',
  'NO_TOKEN',
  'NO_REFRESH_TOKEN',
  'MISSING_CLIENT_CREDENTIALS',
  'NOT_AUTHORIZED',
] as const;

export type OAuthErrorCode = (typeof OAUTH_ERROR_CODES)[number];

/** The step that failed. */
export type OAuthOperation =
  | 'exchangeGrantToken'
  | 'exchangeCode'
  | 'refreshAccessToken'
  | 'revokeToken'
  | 'currentUser'
  | 'getAccessToken'
  | 'fetch'
  | 'revoke';

export interface OAuthErrorDetails {
  operation: OAuthOperation;
  /** The HTTP status of the reply, when there was one. */
  status?: number;
  /** Zoho's `error` value (`invalid_code`, `Access Denied`), when it looks like a code and not like a value. */
  accountsError?: string;
  /** For THROTTLED: how long to wait before the next attempt, in milliseconds. */
  retryAfterMs?: number;
  /** The underlying error (a socket error, a timeout); kept only as a safe copy without the secrets. */
  cause?: unknown;
  /** Values the failed step was handling, removed from the copy of `cause`. */
  secrets?: Iterable<string | null | undefined>;
}

const ERROR_BRAND = Symbol.for('@crm/core/OAuthError');
/** Zoho's `error` values are short words; anything else is not repeated (it could echo what was sent). */
const ACCOUNTS_ERROR_SHAPE = /^[A-Za-z][\w .-]{0,63}$/;

/**
 * The error of the token lifecycle: talking to Zoho's accounts server, or to the API with a token.
 * Messages name the step, the host and path and Zoho's error code; never a secret, never a query string.
 * Storage failures stay `TokenStoreError`s (LOCK_TIMEOUT included).
 */
export class OAuthError extends Error {
  override readonly name = 'OAuthError';
  readonly code: OAuthErrorCode;
  readonly operation: OAuthOperation;
  readonly status: number | null;
  readonly accountsError: string | null;
  /** For THROTTLED: how long to wait, in milliseconds; null otherwise. */
  readonly retryAfterMs: number | null;

  constructor(code: OAuthErrorCode, message: string, details: OAuthErrorDetails) {
    const cause =
      details.cause === undefined ? undefined : OAuthError.is(details.cause) ? details.cause : safeCause(details.cause, details.secrets);
    super(`${details.operation}: ${message}`, cause === undefined ? undefined : { cause });
    this.code = code;
    this.operation = details.operation;
    this.status = details.status ?? null;
    this.accountsError =
      typeof details.accountsError === 'string' && ACCOUNTS_ERROR_SHAPE.test(details.accountsError) ? details.accountsError : null;
    this.retryAfterMs = details.retryAfterMs ?? null;
    Object.defineProperty(this, ERROR_BRAND, { value: true });
  }

  /** True for an OAuthError from any copy of this package (ESM and CommonJS builds alike). */
  static is(value: unknown): value is OAuthError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[ERROR_BRAND] === true;
  }
}

/** A URL as messages may show it: origin and path, without credentials, query or fragment. */
export function describeUrl(url: string | URL): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return '[unparseable URL]';
  }
}
