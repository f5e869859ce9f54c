import { TokenStoreError } from '../errors.js';
import { checkOptionNames, checkOptionsObject, MAX_TIMER_MS, positiveIntegerOption } from '../options.js';
import { OAuthToken } from '../token.js';
import { DATA_CENTER_NAMES, DATA_CENTERS, type DataCenter, isDataCenter } from './data-centers.js';
import { describeUrl, OAuthError, type OAuthErrorCode, type OAuthOperation } from './oauth-error.js';

const CLIENT = 'AccountsClient';
const INSPECT = Symbol.for('nodejs.util.inspect.custom');

export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** How long TokenManager pauses a throttled refresh token's refreshes when the server says nothing longer. */
export const DEFAULT_THROTTLE_COOLDOWN_MS = 60_000;

export interface AccountsClientOptions {
  /** The accounts server's base URL (an emulator, a private deployment). Overrides `dataCenter`. */
  accountsUrl?: string;
  /** Picks Zoho's accounts server; default `US`. */
  dataCenter?: DataCenter;
  /** How long one request may take, body included, in milliseconds (default 10000). */
  requestTimeoutMs?: number;
  /** The fetch to use; the platform's by default. */
  fetch?: typeof fetch;
  /** Current time in epoch milliseconds, for `expiryTime` (default `Date.now`). */
  clock?: () => number;
}

/** What a successful token request gives. */
export interface AccountsToken {
  accessToken: string;
  /** Only on a grant token exchange. */
  refreshToken: string | null;
  /** The API domain to call with the access token; null when the reply had none. */
  apiDomain: string | null;
  tokenType: string | null;
  /** The lifetime Zoho gave, in milliseconds (seconds × 1000, or as given when the reply has `expires_in_sec`). */
  expiresInMs: number;
  /** Epoch milliseconds: the time the request was sent plus `expiresInMs`. */
  expiryTime: number;
}

export interface RequestOptions {
  /** Ends the request early: the call rejects with OAuthError ABORTED. */
  signal?: AbortSignal;
}

interface Reply {
  status: number;
  headers: Headers;
  body: Record<string, unknown> | null;
}

export const ACCOUNTS_CLIENT_OPTIONS = ['accountsUrl', 'dataCenter', 'requestTimeoutMs', 'fetch', 'clock'] as const;

function invalid(message: string): TokenStoreError {
  return TokenStoreError.invalidArgument({ store: CLIENT, operation: 'open' }, message);
}

/** An http(s) URL to use as a base; the message never repeats it. Returns it without a trailing slash. */
export function checkBaseUrl(value: unknown, name: string, store: string): string {
  let url: URL | null = null;
  try {
    url = typeof value === 'string' ? new URL(value) : null;
  } catch {
    url = null;
  }
  if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.search !== '' || url.hash !== '') {
    throw TokenStoreError.invalidArgument(
      { store, operation: 'open' },
      `${name} must be an http:// or https:// URL without query or fragment`,
    );
  }
  if (url.username !== '' || url.password !== '') {
    throw TokenStoreError.invalidArgument({ store, operation: 'open' }, `${name} must not hold credentials`);
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/**
 * A small client for Zoho's accounts server on the platform `fetch`: form bodies (never secrets in a query
 * string), one timeout per request, Zoho's HTTP 200 error bodies read as errors. Every failure is an
 * OAuthError whose message holds no secret.
 */
export class AccountsClient {
  readonly accountsUrl: string;
  readonly requestTimeoutMs: number;
  readonly #fetch: typeof fetch;
  readonly #clock: () => number;

  constructor(options: AccountsClientOptions = {}) {
    checkOptionsObject(options, CLIENT);
    checkOptionNames(options, ACCOUNTS_CLIENT_OPTIONS, CLIENT);
    if (options.dataCenter !== undefined && !isDataCenter(options.dataCenter)) {
      throw invalid(`dataCenter must be one of ${DATA_CENTER_NAMES.join(', ')}`);
    }
    this.accountsUrl =
      options.accountsUrl === undefined
        ? DATA_CENTERS[options.dataCenter ?? 'US'].accountsUrl
        : checkBaseUrl(options.accountsUrl, 'accountsUrl', CLIENT);
    this.requestTimeoutMs = positiveIntegerOption(
      options.requestTimeoutMs,
      'requestTimeoutMs',
      DEFAULT_REQUEST_TIMEOUT_MS,
      CLIENT,
      MAX_TIMER_MS,
    );
    if (options.fetch !== undefined && typeof options.fetch !== 'function') throw invalid('fetch must be a function');
    if (options.clock !== undefined && typeof options.clock !== 'function') throw invalid('clock must be a function');
    this.#fetch = (options.fetch as typeof fetch | undefined) ?? ((...args) => fetch(...args));
    this.#clock = (options.clock as (() => number) | undefined) ?? Date.now;
  }

  /**
   * Exchanges a grant token (single use, 3 minutes) for an access and a refresh token. `codeVerifier`: the PKCE
   * verifier, when the authorisation request carried its challenge.
   */
  async exchangeGrantToken(
    input: { code: string; clientId: string; clientSecret: string; redirectUrl: string; codeVerifier?: string },
    options: RequestOptions = {},
  ): Promise<AccountsToken> {
    const operation = 'exchangeGrantToken';
    checkStrings(operation, input, ['code', 'clientId', 'clientSecret', 'redirectUrl']);
    if (input.codeVerifier !== undefined) checkStrings(operation, input, ['codeVerifier']);
    const secrets = [input.code, input.clientSecret, ...(input.codeVerifier === undefined ? [] : [input.codeVerifier])];
    const startedAt = this.#clock();
    const reply = await this.#request(operation, 'POST', `${this.accountsUrl}/oauth/v2/token`, {
      form: {
        grant_type: 'authorization_code',
        code: input.code,
        client_id: input.clientId,
        client_secret: input.clientSecret,
        redirect_uri: input.redirectUrl,
        ...(input.codeVerifier === undefined ? {} : { code_verifier: input.codeVerifier }),
      },
      secrets,
      signal: options.signal,
    });
    return this.#tokenFrom(operation, reply, startedAt, true);
  }

  /** Gets a new access token for a refresh token (at most 10 per refresh token in 10 minutes at Zoho). */
  async refreshAccessToken(
    input: { refreshToken: string; clientId: string; clientSecret: string },
    options: RequestOptions = {},
  ): Promise<AccountsToken> {
    const operation = 'refreshAccessToken';
    checkStrings(operation, input, ['refreshToken', 'clientId', 'clientSecret']);
    const startedAt = this.#clock();
    const reply = await this.#request(operation, 'POST', `${this.accountsUrl}/oauth/v2/token`, {
      form: {
        grant_type: 'refresh_token',
        refresh_token: input.refreshToken,
        client_id: input.clientId,
        client_secret: input.clientSecret,
      },
      secrets: [input.refreshToken, input.clientSecret],
      signal: options.signal,
    });
    return this.#tokenFrom(operation, reply, startedAt, false);
  }

  /** Revokes a refresh token (and the access tokens made from it). An unknown token is not an error at Zoho. */
  async revokeToken(token: string, options: RequestOptions = {}): Promise<void> {
    const operation = 'revokeToken';
    checkStrings(operation, { token }, ['token']);
    const reply = await this.#request(operation, 'POST', `${this.accountsUrl}/oauth/v2/token/revoke`, {
      form: { token },
      secrets: [token],
      signal: options.signal,
    });
    this.#throwIfError(operation, reply);
  }

  /**
   * The email of the user an access token belongs to, from `<apiDomain>/crm/v8/users?type=CurrentUser`
   * (what Zoho's SDKs use as the user name of a token obtained from a grant token).
   */
  async currentUserEmail(apiDomain: string, accessToken: string, options: RequestOptions = {}): Promise<string> {
    const operation = 'currentUser';
    checkStrings(operation, { apiDomain, accessToken }, ['apiDomain', 'accessToken']);
    const base = checkApiDomain(operation, apiDomain);
    const reply = await this.#request(operation, 'GET', `${base}/crm/v8/users?type=CurrentUser`, {
      headers: { authorization: `Zoho-oauthtoken ${accessToken}` },
      secrets: [accessToken],
      signal: options.signal,
    });
    const where = describeUrl(`${base}/crm/v8/users`);
    if (reply.status === 401) {
      throw new OAuthError('NOT_AUTHORIZED', `${where} refused the access token (HTTP 401)`, {
        operation,
        status: 401,
        accountsError: typeof reply.body?.code === 'string' ? reply.body.code : undefined,
      });
    }
    if (reply.status >= 500)
      throw new OAuthError('SERVER_ERROR', `${where} answered HTTP ${reply.status}`, { operation, status: reply.status });
    const users = reply.body?.users;
    const email = Array.isArray(users) ? (users[0] as { email?: unknown } | undefined)?.email : undefined;
    if (reply.status !== 200 || typeof email !== 'string' || email === '' || !isStorable(email)) {
      throw new OAuthError('INVALID_RESPONSE', `${where} answered without the current user's email (HTTP ${reply.status})`, {
        operation,
        status: reply.status,
      });
    }
    return email;
  }

  async #request(
    operation: OAuthOperation,
    method: 'GET' | 'POST',
    url: string,
    request: { form?: Record<string, string>; headers?: Record<string, string>; secrets: string[]; signal: AbortSignal | undefined },
  ): Promise<Reply> {
    const where = describeUrl(url);
    if (request.signal !== undefined && !(request.signal instanceof AbortSignal)) {
      throw TokenStoreError.invalidArgument({ store: CLIENT, operation: 'open' }, 'signal must be an AbortSignal');
    }
    const timeout = AbortSignal.timeout(this.requestTimeoutMs);
    const signal = request.signal === undefined ? timeout : anySignal([timeout, request.signal]);
    try {
      if (request.signal?.aborted) throw request.signal.reason;
      const response = await this.#fetch(url, {
        method,
        headers: { accept: 'application/json', ...request.headers },
        body: request.form === undefined ? undefined : new URLSearchParams(request.form),
        signal,
        // A redirect would send the form (secrets included) to another address: never follow one.
        redirect: 'manual',
      });
      const text = await response.text();
      return { status: response.status, headers: response.headers, body: parseObject(text) };
    } catch (error) {
      if (request.signal?.aborted) {
        throw new OAuthError('ABORTED', `the request to ${where} was aborted`, { operation });
      }
      if (timeout.aborted) {
        throw new OAuthError('NETWORK', `${where} did not answer within ${this.requestTimeoutMs} ms`, {
          operation,
          cause: error,
          secrets: request.secrets,
        });
      }
      throw new OAuthError('NETWORK', `${where} could not be reached`, { operation, cause: error, secrets: request.secrets });
    }
  }

  #throwIfError(operation: OAuthOperation, reply: Reply): void {
    const body = reply.body;
    const error = body?.error;
    const described = `${describeUrl(this.accountsUrl)}`;
    if (typeof error === 'string' || (body !== null && body.status === 'failure')) {
      const text = typeof error === 'string' ? error : '';
      const description = typeof body?.error_description === 'string' ? body.error_description : '';
      const code = accountsErrorCode(text, description, reply.status);
      throw new OAuthError(code, `the accounts server ${described} answered ${safeWord(text)} (HTTP ${reply.status})`, {
        operation,
        status: reply.status,
        accountsError: text,
        retryAfterMs: code === 'THROTTLED' ? retryAfter(reply.headers) : undefined,
      });
    }
    if (reply.status === 429) {
      throw new OAuthError('THROTTLED', `the accounts server ${described} answered HTTP 429`, {
        operation,
        status: 429,
        retryAfterMs: retryAfter(reply.headers),
      });
    }
    if (reply.status >= 500) {
      throw new OAuthError('SERVER_ERROR', `the accounts server ${described} answered HTTP ${reply.status}`, {
        operation,
        status: reply.status,
      });
    }
    if (reply.status !== 200 || body === null) {
      throw new OAuthError('INVALID_RESPONSE', `the accounts server ${described} answered HTTP ${reply.status} without a JSON object`, {
        operation,
        status: reply.status,
      });
    }
  }

  #tokenFrom(operation: OAuthOperation, reply: Reply, startedAt: number, withRefreshToken: boolean): AccountsToken {
    this.#throwIfError(operation, reply);
    const body = reply.body as Record<string, unknown>;
    const bad = (what: string) =>
      new OAuthError('INVALID_RESPONSE', `the accounts server ${describeUrl(this.accountsUrl)} answered ${what}`, {
        operation,
        status: reply.status,
      });
    const accessToken = body.access_token;
    if (typeof accessToken !== 'string' || accessToken === '' || !isStorable(accessToken)) throw bad('without a usable access_token');
    const refreshToken = body.refresh_token ?? null;
    if (refreshToken !== null && (typeof refreshToken !== 'string' || !isStorable(refreshToken))) throw bad('an unusable refresh_token');
    if (withRefreshToken && (refreshToken === null || refreshToken === '')) throw bad('without a refresh_token');
    let apiDomain = body.api_domain ?? null;
    if (apiDomain !== null) {
      if (typeof apiDomain !== 'string' || !isHttpUrl(apiDomain) || !isStorable(apiDomain))
        throw bad('an api_domain that is not an http(s) URL');
      apiDomain = apiDomain.replace(/\/+$/, '');
    }
    const expiresInMs = lifetimeMs(body);
    if (expiresInMs === null) throw bad('without a usable expires_in');
    // A lifetime past any real one (Zoho's is an hour) is a broken reply; thrown before anything is saved.
    if (expiresInMs > MAX_LIFETIME_MS) throw bad(`with an expires_in of more than ${MAX_LIFETIME_MS / 86_400_000} days`);
    return {
      accessToken,
      refreshToken: refreshToken === '' ? null : (refreshToken as string | null),
      apiDomain: apiDomain as string | null,
      tokenType: typeof body.token_type === 'string' ? body.token_type : null,
      expiresInMs,
      expiryTime: Math.round(startedAt + expiresInMs),
    };
  }

  toString(): string {
    return `AccountsClient { accountsUrl: '${this.accountsUrl}', requestTimeoutMs: ${this.requestTimeoutMs} }`;
  }

  [INSPECT](): string {
    return this.toString();
  }
}

function checkStrings(operation: OAuthOperation, input: object, names: readonly string[]): void {
  if (typeof input !== 'object' || input === null) {
    throw TokenStoreError.invalidArgument({ store: CLIENT, operation: 'open' }, `${operation} takes an object`);
  }
  for (const name of names) {
    const value = (input as Record<string, unknown>)[name];
    if (typeof value !== 'string' || value === '') {
      throw TokenStoreError.invalidArgument({ store: CLIENT, operation: 'open' }, `${operation} needs ${name} as a non-empty string`);
    }
  }
}

function checkApiDomain(operation: OAuthOperation, apiDomain: string): string {
  if (!isHttpUrl(apiDomain)) {
    throw TokenStoreError.invalidArgument({ store: CLIENT, operation: 'open' }, `${operation} needs the API domain as an http(s) URL`);
  }
  return apiDomain.replace(/\/+$/, '');
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.username === '' && url.password === '';
  } catch {
    return false;
  }
}

/** A value every store can keep (no NUL, no lone surrogate), as OAuthToken checks it. */
function isStorable(value: string): boolean {
  try {
    new OAuthToken({ accessToken: value });
    return true;
  } catch {
    return false;
  }
}

function parseObject(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** The longest access token lifetime a reply may give: a year. */
const MAX_LIFETIME_MS = 365 * 86_400_000;

/** `expires_in` is seconds, except in the older shape where `expires_in_sec` is present and `expires_in` is milliseconds. */
function lifetimeMs(body: Record<string, unknown>): number | null {
  const number = (value: unknown): number | null => {
    const parsed = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
    return Number.isFinite(parsed) && parsed > 0 ? parsed : null;
  };
  const expiresIn = number(body.expires_in);
  const expiresInSec = body.expires_in_sec === undefined ? null : number(body.expires_in_sec);
  if (body.expires_in_sec !== undefined) {
    if (expiresIn !== null) return Math.round(expiresIn);
    return expiresInSec === null ? null : Math.round(expiresInSec * 1000);
  }
  return expiresIn === null ? null : Math.round(expiresIn * 1000);
}

function accountsErrorCode(error: string, description: string, status: number): OAuthErrorCode {
  if (status === 429 || /access denied/i.test(error) || /too many requests/i.test(`${error} ${description}`)) return 'THROTTLED';
  switch (error) {
    case 'invalid_code':
      return 'INVALID_GRANT';
    case 'invalid_client':
    case 'invalid_client_secret':
      return 'INVALID_CLIENT';
    case 'invalid_redirect_uri':
      return 'INVALID_REDIRECT_URI';
    case 'invalid_request':
    case 'unsupported_grant_type':
      return 'INVALID_REQUEST';
    default:
      return status >= 500 ? 'SERVER_ERROR' : 'ACCOUNTS_ERROR';
  }
}

/** Zoho's error word as the message may show it; anything that does not look like one is not repeated. */
function safeWord(text: string): string {
  return /^[A-Za-z][\w .-]{0,63}$/.test(text) ? `'${text}'` : 'an error';
}

/** `Retry-After` in seconds or as a date; undefined when the server sent none (the manager then uses its cooldown). */
function retryAfter(headers: Headers): number | undefined {
  const value = headers.get('retry-after');
  if (value !== null) {
    const seconds = Number(value);
    if (Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000);
    const date = Date.parse(value);
    if (Number.isFinite(date)) return Math.max(0, date - Date.now());
  }
  return undefined;
}

/** AbortSignal.any where the platform has it (Node 20.3+); a small stand-in before that. */
function anySignal(signals: AbortSignal[]): AbortSignal {
  if (typeof AbortSignal.any === 'function') return AbortSignal.any(signals);
  const controller = new AbortController();
  for (const signal of signals) {
    if (signal.aborted) {
      controller.abort(signal.reason);
      break;
    }
    signal.addEventListener('abort', () => controller.abort(signal.reason), { once: true, signal: controller.signal });
  }
  return controller.signal;
}
