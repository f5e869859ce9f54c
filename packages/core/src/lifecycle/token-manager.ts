import { createHash } from 'node:crypto';
import { TokenStoreError } from '../errors.js';
import { type HeldLock, type LockOptions, MAX_LOCK_KEY_LENGTH, MIN_LEASE_MS, supportsLocking } from '../lock.js';
import { checkOptionNames, checkOptionsObject, MAX_TIMER_MS, positiveIntegerOption } from '../options.js';
import type { TokenStore } from '../store.js';
import { OAuthToken, UserSignature } from '../token.js';
import {
  AccountsClient,
  type AccountsToken,
  checkBaseUrl,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_THROTTLE_COOLDOWN_MS,
} from './accounts-client.js';
import { DATA_CENTER_NAMES, DATA_CENTERS, type DataCenter, isDataCenter } from './data-centers.js';
import { describeUrl, OAuthError, type OAuthOperation } from './oauth-error.js';

const MANAGER = 'TokenManager';
const INSPECT = Symbol.for('nodejs.util.inspect.custom');

export const DEFAULT_EXPIRY_MARGIN_MS = 5000;

export interface TokenManagerOptions {
  /** Where tokens live. When it offers `withLock` (see `supportsLocking`), refreshes are single across processes. */
  store: TokenStore;
  /** The accounts server's base URL (the emulator's `url`, a private deployment). Overrides `dataCenter`. */
  accountsUrl?: string;
  /** Picks Zoho's accounts server; default `US`. */
  dataCenter?: DataCenter;
  /** Client credentials for tokens that hold none themselves. */
  clientId?: string;
  clientSecret?: string;
  /** The redirect URL a grant token was issued for, for tokens that hold none themselves. */
  redirectUrl?: string;
  /** A token counts as expired this long before its `expiryTime`, in milliseconds (default 5000, as Zoho's SDKs). */
  expiryMarginMs?: number;
  /** How long one request to the accounts server may take, in milliseconds (default 10000). */
  requestTimeoutMs?: number;
  /** The lease and wait of the store's lock around a refresh (the store's defaults: 30 s each). */
  lock?: LockOptions;
  /** After Zoho throttles a refresh, no refresh of that refresh token is tried for this long (default 60000). */
  throttleCooldownMs?: number;
  /** The fetch to use for every request; the platform's by default. */
  fetch?: typeof fetch;
  /** Current time in epoch milliseconds (default `Date.now`); for tests. */
  clock?: () => number;
  /**
   * Told when a best-effort step failed without failing the call (a replaced refresh token that could not be
   * revoked after a sign-in). The error carries no secret. Nothing is reported without it.
   */
  onWarning?: (warning: { operation: OAuthOperation; message: string; error: unknown }) => void;
}

/** What the manager's methods take to find a token: a user name, a UserSignature, or a token. */
export type TokenReference = string | UserSignature | OAuthToken;

const MANAGER_OPTIONS = [
  'store',
  'accountsUrl',
  'dataCenter',
  'clientId',
  'clientSecret',
  'redirectUrl',
  'expiryMarginMs',
  'requestTimeoutMs',
  'lock',
  'throttleCooldownMs',
  'fetch',
  'clock',
  'onWarning',
] as const;

function invalidOption(message: string): TokenStoreError {
  return TokenStoreError.invalidArgument({ store: MANAGER, operation: 'open' }, message);
}

function invalidCall(operation: 'getAccessToken' | 'exchangeCode' | 'fetch' | 'revoke', message: string): TokenStoreError {
  return TokenStoreError.invalidArgument({ store: MANAGER, operation }, message);
}

function sha256(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

function wholeNumberOption(value: unknown, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > MAX_TIMER_MS) {
    throw invalidOption(`${name} must be a whole number from ${min} to ${MAX_TIMER_MS}`);
  }
  return value;
}

function optionalString(value: unknown, name: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' || value === '') throw invalidOption(`${name} must be a non-empty string`);
  return value;
}

function checkLockOption(value: unknown): LockOptions | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidOption('lock must be an object');
  const { leaseMs, waitMs, ...rest } = value as LockOptions;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) throw invalidOption(`unknown lock option ${unknown[0]!.slice(0, 80)}; the options are leaseMs, waitMs`);
  const checked: LockOptions = {};
  if (leaseMs !== undefined) checked.leaseMs = wholeNumberOption(leaseMs, 'lock.leaseMs', 0, MIN_LEASE_MS);
  if (waitMs !== undefined) checked.waitMs = wholeNumberOption(waitMs, 'lock.waitMs', 0, 0);
  return Object.freeze(checked);
}

function checkStore(value: unknown): TokenStore {
  const methods = ['findToken', 'saveToken', 'findTokenById', 'deleteToken'] as const;
  if (
    typeof value !== 'object' ||
    value === null ||
    methods.some((name) => typeof (value as Record<string, unknown>)[name] !== 'function')
  ) {
    throw invalidOption('store must be a TokenStore (findToken, saveToken, findTokenById, deleteToken)');
  }
  return value as TokenStore;
}

/**
 * The lock key of a token's lifecycle: `refresh:<id>`, or `refresh:sha256:<hex>` when that would be longer
 * than a lock key may be. TokenManager refreshes and deletes (revoke) a token under it; anything else that
 * rewrites or deletes a stored token by id (rekey, purge) takes the same lock.
 */
export function refreshLockKey(id: string): string {
  const key = `refresh:${id}`;
  return key.length <= MAX_LOCK_KEY_LENGTH ? key : `refresh:sha256:${sha256(id)}`;
}

function isLockTimeout(error: unknown): boolean {
  return TokenStoreError.is(error) && error.code === 'LOCK_TIMEOUT' && error.operation === 'withLock';
}

function isLockLost(error: unknown): boolean {
  return TokenStoreError.is(error) && error.code === 'LOCK_LOST';
}

interface Credentials {
  clientId: string;
  clientSecret: string;
}

/**
 * Gets a valid access token for a user whenever the app needs one: finds the token in the store, exchanges a
 * grant token on first use, refreshes a token about to expire, saves the result, and never refreshes one
 * token twice at once: in-process callers share one refresh, and with a store that offers `withLock`, so do
 * processes. `docs/LIFECYCLE.md` describes every decision.
 */
export class TokenManager {
  /** The accounts server in use. */
  readonly accountsUrl: string;
  readonly expiryMarginMs: number;
  readonly throttleCooldownMs: number;
  readonly #store: TokenStore;
  readonly #accounts: AccountsClient;
  readonly #clientId: string | null;
  readonly #clientSecret: string | null;
  readonly #redirectUrl: string | null;
  readonly #lock: LockOptions | undefined;
  readonly #fetch: typeof fetch;
  readonly #clock: () => number;
  readonly #onWarning: TokenManagerOptions['onWarning'] | null;
  /** Zoho's API domain of the chosen data center, for replies that name none. */
  readonly #defaultApiDomain: string | null;
  /** In-flight refreshes by token id (or hashed refresh token for a token not stored yet). */
  readonly #refreshes = new Map<string, Promise<OAuthToken>>();
  /** In-flight exchanges of self-client grant tokens (getAccessToken), by hashed grant token. */
  readonly #exchanges = new Map<string, Promise<OAuthToken>>();
  /** In-flight sign-ins (exchangeCode), by hashed code and PKCE verifier together. */
  readonly #signIns = new Map<string, Promise<OAuthToken>>();
  /** Until when refreshes are paused, by hashed refresh token. */
  readonly #throttledUntil = new Map<string, number>();

  constructor(options: TokenManagerOptions) {
    checkOptionsObject(options, MANAGER);
    checkOptionNames(options, MANAGER_OPTIONS, MANAGER);
    this.#store = checkStore(options.store);
    if (options.dataCenter !== undefined && !isDataCenter(options.dataCenter)) {
      throw invalidOption(`dataCenter must be one of ${DATA_CENTER_NAMES.join(', ')}`);
    }
    const dataCenter = options.dataCenter ?? 'US';
    this.accountsUrl =
      options.accountsUrl === undefined ? DATA_CENTERS[dataCenter].accountsUrl : checkBaseUrl(options.accountsUrl, 'accountsUrl', MANAGER);
    this.#defaultApiDomain = options.accountsUrl === undefined ? DATA_CENTERS[dataCenter].apiDomain : null;
    this.#clientId = optionalString(options.clientId, 'clientId');
    this.#clientSecret = optionalString(options.clientSecret, 'clientSecret');
    this.#redirectUrl = optionalString(options.redirectUrl, 'redirectUrl');
    this.expiryMarginMs = wholeNumberOption(options.expiryMarginMs, 'expiryMarginMs', DEFAULT_EXPIRY_MARGIN_MS, 0);
    const requestTimeoutMs = positiveIntegerOption(options.requestTimeoutMs, 'requestTimeoutMs', DEFAULT_REQUEST_TIMEOUT_MS, MANAGER);
    this.#lock = checkLockOption(options.lock);
    this.throttleCooldownMs = wholeNumberOption(options.throttleCooldownMs, 'throttleCooldownMs', DEFAULT_THROTTLE_COOLDOWN_MS, 0);
    if (options.fetch !== undefined && typeof options.fetch !== 'function') throw invalidOption('fetch must be a function');
    if (options.clock !== undefined && typeof options.clock !== 'function') throw invalidOption('clock must be a function');
    if (options.onWarning !== undefined && typeof options.onWarning !== 'function') throw invalidOption('onWarning must be a function');
    this.#onWarning = options.onWarning ?? null;
    this.#fetch = options.fetch ?? ((...args) => fetch(...args));
    this.#clock = options.clock ?? Date.now;
    this.#accounts = new AccountsClient({ accountsUrl: this.accountsUrl, requestTimeoutMs, fetch: this.#fetch, clock: this.#clock });
  }

  /** A valid access token for the user or token: from the store when fresh, else exchanged or refreshed (once). */
  async getAccessToken(reference: TokenReference): Promise<string> {
    const token = await this.#valid(reference, 'getAccessToken');
    return token.accessToken as string;
  }

  /** The whole valid token (a copy), as `getAccessToken` finds or renews it. */
  async getToken(reference: TokenReference): Promise<OAuthToken> {
    return (await this.#valid(reference, 'getAccessToken')).clone();
  }

  /** `Zoho-oauthtoken <access token>`, the `Authorization` header of a CRM API call. */
  async authorizationHeader(reference: TokenReference): Promise<string> {
    return `Zoho-oauthtoken ${await this.getAccessToken(reference)}`;
  }

  /**
   * `fetch(url, init)` with the user's `Authorization` header. When the API answers 401 with code
   * `INVALID_OAUTHTOKEN` (the token was revoked or pushed out before its time), refreshes once and sends the
   * request once more; a second such answer is OAuthError NOT_AUTHORIZED. A request body must be
   * re-readable for the retry (a string, URLSearchParams, FormData, a Blob or a buffer; not a stream).
   */
  async fetch(reference: TokenReference, url: string | URL, init: RequestInit = {}): Promise<Response> {
    if (typeof url !== 'string' && !(url instanceof URL)) throw invalidCall('fetch', 'fetch takes the URL as a string or a URL');
    if (typeof init !== 'object' || init === null) throw invalidCall('fetch', 'fetch takes the request options as an object');
    const token = await this.#valid(reference, 'fetch');
    const first = await this.#send(url, init, token.accessToken as string);
    if (!(await isRejectedToken(first))) return first;
    await first.body?.cancel().catch(() => undefined);
    const renewed = await this.#refresh(token, token.accessToken, 'fetch');
    const second = await this.#send(url, init, renewed.accessToken as string);
    if (!(await isRejectedToken(second))) return second;
    await second.body?.cancel().catch(() => undefined);
    throw new OAuthError('NOT_AUTHORIZED', `${describeUrl(url)} refused the access token again after a refresh (HTTP 401)`, {
      operation: 'fetch',
      status: 401,
      accountsError: 'INVALID_OAUTHTOKEN',
    });
  }

  /**
   * Signs a user in: sends the grant code the accounts server gave the redirect URL (with the PKCE verifier
   * when the authorisation URL carried a challenge) to the accounts server, names the token after the user
   * the CRM's current-user endpoint names unless `userName` is given, saves it, and returns a copy.
   *
   * The code always goes to the accounts server, which alone knows whether it is spent: a used, expired or
   * unknown code, or a wrong verifier, is OAuthError INVALID_GRANT, never a token found in the store. The
   * saved token keeps no grant token (it is spent). When the CRM does not say who signed in, nothing is
   * saved: the new refresh token is revoked (best effort) and the current-user call's OAuthError (operation
   * `currentUser`) is thrown. A user who signs in again keeps one stored token, with the new refresh token;
   * the refresh token it replaced is revoked at the accounts server (best effort, reported to `onWarning`)
   * unless `revokeReplaced` is false: Zoho keeps at most 20 refresh tokens per user and client and drops
   * the oldest silently. Uses the manager's `clientId`, `clientSecret` and `redirectUrl` unless
   * `redirectUrl` is given.
   */
  async exchangeCode(input: {
    code: string;
    codeVerifier?: string;
    redirectUrl?: string;
    userName?: string;
    revokeReplaced?: boolean;
  }): Promise<OAuthToken> {
    if (typeof input !== 'object' || input === null) throw invalidCall('exchangeCode', 'exchangeCode takes an object');
    for (const name of ['code', 'codeVerifier', 'redirectUrl', 'userName'] as const) {
      const value = input[name];
      if ((name === 'code' || value !== undefined) && (typeof value !== 'string' || value === '')) {
        throw invalidCall('exchangeCode', `exchangeCode needs ${name} as a non-empty string`);
      }
    }
    if (input.revokeReplaced !== undefined && typeof input.revokeReplaced !== 'boolean') {
      throw invalidCall('exchangeCode', 'exchangeCode takes revokeReplaced as a boolean');
    }
    const codeVerifier = input.codeVerifier ?? null;
    // Callers with the same code and verifier share one request; a different verifier is its own request.
    const key = sha256(`${input.code}\n${codeVerifier ?? ''}\n${input.userName ?? ''}\n${input.redirectUrl ?? ''}`);
    let flight = this.#signIns.get(key);
    if (flight === undefined) {
      flight = this.#signIn(input, codeVerifier).finally(() => this.#signIns.delete(key));
      this.#signIns.set(key, flight);
    }
    return (await flight).clone();
  }

  /**
   * Revokes the token's refresh token at the accounts server, then deletes the token from the store, under
   * the token's lock where the store has one: a rewrite by id under that lock (a refresh, a rekey) then never
   * lands just after the delete and brings the token back.
   */
  async revoke(id: string): Promise<void> {
    if (typeof id !== 'string' || id === '') throw invalidCall('revoke', 'revoke takes a token id as a non-empty string');
    const token = await this.#store.findTokenById(id);
    if (token === null) throw new OAuthError('NO_TOKEN', 'the store holds no token with this id', { operation: 'revoke' });
    const secret = token.refreshToken ?? token.accessToken;
    if (secret !== null) await this.#accounts.revokeToken(secret);
    if (supportsLocking(this.#store)) await this.#store.withLock(refreshLockKey(id), () => this.#store.deleteToken(id), this.#lock);
    else await this.#store.deleteToken(id);
  }

  toString(): string {
    const store = (this.#store as object).constructor?.name ?? 'TokenStore';
    return `TokenManager { accountsUrl: '${this.accountsUrl}', store: ${store}, locking: ${supportsLocking(this.#store)}, expiryMarginMs: ${this.expiryMarginMs} }`;
  }

  [INSPECT](): string {
    return this.toString();
  }

  // ---------------------------------------------------------------------------------------------------------

  #now(): number {
    return this.#clock();
  }

  #isFresh(token: OAuthToken): boolean {
    return token.accessToken !== null && !token.isExpired(this.#now(), this.expiryMarginMs);
  }

  /** Fresh, and not the access token the API just refused. */
  #usable(token: OAuthToken, rejected: string | null): boolean {
    return this.#isFresh(token) && token.accessToken !== rejected;
  }

  /** Valid right now, margin or not: what a throttled caller may still use. */
  #stillValid(token: OAuthToken, rejected: string | null): boolean {
    return token.accessToken !== null && token.accessToken !== rejected && token.expiryTime !== null && token.expiryTime > this.#now();
  }

  async #valid(reference: TokenReference, operation: OAuthOperation): Promise<OAuthToken> {
    let token = await this.#resolve(reference, operation);
    if (token.refreshToken === null && token.grantToken !== null) token = await this.#exchange(token, operation);
    if (this.#isFresh(token)) return token;
    if (token.refreshToken === null) {
      throw new OAuthError('NO_REFRESH_TOKEN', 'the access token expired and the token has no refresh token', { operation });
    }
    return this.#refresh(token, null, operation);
  }

  /** The stored token a reference names (one store read), or a given token not stored yet that can be renewed. */
  async #resolve(reference: TokenReference, operation: OAuthOperation): Promise<OAuthToken> {
    let probe: OAuthToken;
    const given = OAuthToken.isToken(reference);
    if (typeof reference === 'string') {
      if (reference === '')
        throw invalidCall(operation === 'fetch' ? 'fetch' : 'getAccessToken', `${operation} needs a non-empty user name`);
      probe = new OAuthToken({ userSignature: new UserSignature(reference) });
    } else if (given) {
      reference.validate();
      probe = reference.clone();
      // With the manager's credentials, a grant or refresh token alone is enough to find its stored token.
      if (probe.userSignature === null && (probe.grantToken !== null || probe.refreshToken !== null)) {
        probe.clientId ??= this.#clientId;
        probe.clientSecret ??= this.#clientSecret;
      }
    } else if (typeof reference === 'object' && reference !== null && typeof (reference as UserSignature).name === 'string') {
      probe = new OAuthToken({ userSignature: reference as UserSignature });
    } else {
      throw invalidCall(
        operation === 'fetch' ? 'fetch' : 'getAccessToken',
        `${operation} takes a user name, a UserSignature or an OAuthToken`,
      );
    }
    const found = await this.#store.findToken(probe);
    if (found !== null) return found;
    if (probe.id !== null) {
      const byId = await this.#store.findTokenById(probe.id);
      if (byId !== null) return byId;
    }
    if (given && (probe.grantToken !== null || probe.refreshToken !== null)) return probe;
    throw new OAuthError('NO_TOKEN', 'the store holds no token for this user or token', { operation });
  }

  #credentials(token: OAuthToken, operation: OAuthOperation): Credentials {
    const clientId = token.clientId ?? this.#clientId;
    const clientSecret = token.clientSecret ?? this.#clientSecret;
    if (clientId === null || clientSecret === null) {
      throw new OAuthError('MISSING_CLIENT_CREDENTIALS', 'neither the token nor the manager options give a client id and secret', {
        operation,
      });
    }
    return { clientId, clientSecret };
  }

  // --- sign-in (exchangeCode) ------------------------------------------------------------------------------

  async #signIn(
    input: { code: string; redirectUrl?: string; userName?: string; revokeReplaced?: boolean },
    codeVerifier: string | null,
  ): Promise<OAuthToken> {
    const operation = 'exchangeCode';
    const credentials = this.#credentials(new OAuthToken({}), operation);
    const redirectUrl = input.redirectUrl ?? this.#redirectUrl;
    if (redirectUrl === null) {
      throw new OAuthError('MISSING_CLIENT_CREDENTIALS', 'neither exchangeCode nor the manager options give the redirect URL', {
        operation,
      });
    }
    const reply = await this.#accounts.exchangeGrantToken({
      code: input.code,
      ...credentials,
      redirectUrl,
      ...(codeVerifier === null ? {} : { codeVerifier }),
    });
    const apiDomain = reply.apiDomain ?? this.#defaultApiDomain;
    let userName = input.userName ?? null;
    if (userName === null) {
      try {
        if (apiDomain === null) {
          throw new OAuthError('INVALID_RESPONSE', 'the token reply named no API domain to ask who signed in', {
            operation: 'currentUser',
          });
        }
        userName = await this.#accounts.currentUserEmail(apiDomain, reply.accessToken);
      } catch (error) {
        // A token nobody can name would stay in the store with a live refresh token: none is kept.
        await this.#revokeQuietly(reply.refreshToken ?? reply.accessToken, operation);
        throw error;
      }
    }
    const previous = await this.#store.findToken(new OAuthToken({ userSignature: new UserSignature(userName) }));
    const saved = new OAuthToken({
      userSignature: new UserSignature(userName),
      clientId: credentials.clientId,
      clientSecret: credentials.clientSecret,
      redirectUrl,
      refreshToken: reply.refreshToken,
      accessToken: reply.accessToken,
      expiryTime: reply.expiryTime,
      apiDomain,
    });
    // The user's stored token takes the new tokens (same id).
    if (previous?.id != null) saved.id = previous.id;
    await this.#store.saveToken(saved);
    const replaced = previous?.refreshToken ?? null;
    if (input.revokeReplaced !== false && replaced !== null && replaced !== reply.refreshToken) {
      await this.#revokeQuietly(replaced, operation);
    }
    return saved;
  }

  /** Revokes a refresh token; a failure goes to `onWarning`, never to the caller. */
  async #revokeQuietly(refreshToken: string, operation: OAuthOperation): Promise<void> {
    try {
      await this.#accounts.revokeToken(refreshToken);
    } catch (error) {
      try {
        this.#onWarning?.({
          operation,
          message: `could not revoke a refresh token no longer used (${OAuthError.is(error) ? error.code : 'error'})`,
          error,
        });
      } catch {
        // A failing listener does not fail the sign-in either.
      }
    }
  }

  // --- grant token exchange --------------------------------------------------------------------------------

  /**
   * Exchanges a self-client grant token (getAccessToken with a token holding one) once, however many callers
   * ask at once; the result may need a refresh. Not for browser sign-ins: see exchangeCode.
   */
  #exchange(token: OAuthToken, operation: OAuthOperation): Promise<OAuthToken> {
    const key = sha256(token.grantToken as string);
    let flight = this.#exchanges.get(key);
    if (flight === undefined) {
      flight = this.#exchangeOnce(token, operation).finally(() => this.#exchanges.delete(key));
      this.#exchanges.set(key, flight);
    }
    return flight;
  }

  async #exchangeOnce(token: OAuthToken, operation: OAuthOperation): Promise<OAuthToken> {
    const credentials = this.#credentials(token, operation);
    const redirectUrl = token.redirectUrl ?? this.#redirectUrl;
    if (redirectUrl === null) {
      throw new OAuthError(
        'MISSING_CLIENT_CREDENTIALS',
        'neither the token nor the manager options give the redirect URL of the grant token',
        {
          operation,
        },
      );
    }
    const work = async (): Promise<OAuthToken> => {
      // Double-checked: another caller or process may have exchanged this grant token already.
      const exchanged = await this.#findExchanged(token, credentials);
      if (exchanged !== null) return exchanged;
      let reply: AccountsToken;
      try {
        reply = await this.#accounts.exchangeGrantToken({
          code: token.grantToken as string,
          ...credentials,
          redirectUrl,
        });
      } catch (error) {
        // A grant token is single use: a process that lost the race finds the winner's token.
        if (OAuthError.is(error) && error.code === 'INVALID_GRANT') {
          const winner = await this.#findExchanged(token, credentials);
          if (winner !== null) return winner;
        }
        throw error;
      }
      const saved = token.clone();
      saved.clientId = credentials.clientId;
      saved.clientSecret = credentials.clientSecret;
      saved.redirectUrl = redirectUrl;
      saved.refreshToken = reply.refreshToken;
      saved.accessToken = reply.accessToken;
      saved.expiryTime = reply.expiryTime;
      saved.apiDomain = reply.apiDomain ?? saved.apiDomain ?? this.#defaultApiDomain;
      if (saved.userSignature === null && saved.apiDomain !== null) {
        try {
          saved.userSignature = new UserSignature(await this.#accounts.currentUserEmail(saved.apiDomain, reply.accessToken));
        } catch {
          // The refresh token must not be lost: the token is saved without a user name (findable by id and grant token).
        }
      }
      // Saved even by a holder that lost its lease: nobody else can hold a token from this single-use grant.
      try {
        await this.#store.saveToken(saved);
      } catch (error) {
        if (!(TokenStoreError.is(error) && error.code === 'CONFLICT' && saved.id !== null && saved.userSignature !== null)) throw error;
        // The user authorised the app again: the new tokens replace those of the user's stored token, and the
        // separate grant token entry goes.
        const renewed = saved.clone();
        renewed.id = null;
        await this.#store.saveToken(renewed);
        await this.#store.deleteToken(saved.id);
        return renewed;
      }
      return saved;
    };
    if (!supportsLocking(this.#store)) return work();
    try {
      return await this.#store.withLock(`grant:${sha256(token.grantToken as string)}`, work, this.#lock);
    } catch (error) {
      if (isLockTimeout(error)) {
        const exchanged = await this.#findExchanged(token, credentials);
        if (exchanged !== null) return exchanged;
      }
      throw error;
    }
  }

  /** The stored token that came from this grant token's exchange (it has a refresh token), or null. */
  async #findExchanged(token: OAuthToken, credentials: Credentials): Promise<OAuthToken | null> {
    if (token.id !== null) {
      const byId = await this.#store.findTokenById(token.id);
      if (byId !== null && byId.refreshToken !== null) return byId;
    }
    const byGrant = await this.#store.findToken(new OAuthToken({ grantToken: token.grantToken, ...credentials }));
    return byGrant !== null && byGrant.refreshToken !== null ? byGrant : null;
  }

  // --- refresh ---------------------------------------------------------------------------------------------

  /** Refreshes once per token, however many callers ask at once. `rejected`: an access token the API refused. */
  #refresh(token: OAuthToken, rejected: string | null, operation: OAuthOperation): Promise<OAuthToken> {
    if (token.refreshToken === null) {
      return Promise.reject(
        new OAuthError('NOT_AUTHORIZED', 'the access token was refused and the token has no refresh token', { operation }),
      );
    }
    const key = token.id ?? `unsaved:${sha256(token.refreshToken)}`;
    let flight = this.#refreshes.get(key);
    if (flight === undefined) {
      flight = this.#refreshOnce(token, rejected, operation).finally(() => this.#refreshes.delete(key));
      this.#refreshes.set(key, flight);
    }
    return flight;
  }

  async #refreshOnce(token: OAuthToken, rejected: string | null, operation: OAuthOperation): Promise<OAuthToken> {
    const throttled = this.#throttleLeft(token.refreshToken as string);
    if (throttled > 0) return this.#whileThrottled(token, rejected, throttled, operation);
    if (token.id === null) {
      // A token not stored yet: refresh it and store it. No lock: there is no stored token to lock on.
      const refreshed = await this.#requestRefresh(token, rejected, operation);
      await this.#store.saveToken(refreshed);
      return refreshed;
    }
    const id = token.id;
    if (!supportsLocking(this.#store)) return this.#refreshStored(id, rejected, null, operation);
    try {
      return await this.#store.withLock(refreshLockKey(id), (lock) => this.#refreshStored(id, rejected, lock, operation), this.#lock);
    } catch (error) {
      if (isLockTimeout(error)) {
        // Another holder kept the lock all along; it may have refreshed meanwhile.
        // A token that is still valid (inside the margin, but not expired) serves the callers meanwhile.
        const current = await this.#store.findTokenById(id);
        if (current !== null && this.#stillValid(current, rejected)) return current;
      }
      throw error;
    }
  }

  /**
   * Under the lock (or, without the capability, in-process only): re-read, refresh only when still stale,
   * and write only when the stored token is still the one the refresh started from.
   */
  async #refreshStored(id: string, rejected: string | null, lock: HeldLock | null, operation: OAuthOperation): Promise<OAuthToken> {
    const current = await this.#store.findTokenById(id);
    if (current === null) throw new OAuthError('NO_TOKEN', 'the token was deleted from the store', { operation });
    if (this.#usable(current, rejected)) return current; // someone else refreshed it: no HTTP
    if (current.refreshToken === null) {
      throw new OAuthError('NO_REFRESH_TOKEN', 'the access token expired and the token has no refresh token', { operation });
    }
    const throttled = this.#throttleLeft(current.refreshToken);
    if (throttled > 0) return this.#whileThrottled(current, rejected, throttled, operation);
    const refreshed = await this.#requestRefresh(current, rejected, operation);
    if (lock !== null) {
      try {
        await lock.confirm();
      } catch (error) {
        // The lease ran out during the refresh: another holder may be writing. Ours is valid: use it, write nothing.
        if (isLockLost(error)) return refreshed;
        throw error;
      }
    }
    const latest = await this.#store.findTokenById(id);
    if (latest === null) return refreshed; // deleted meanwhile (revoked?): not brought back
    if (latest.refreshToken !== current.refreshToken || latest.accessToken !== current.accessToken) {
      // Someone wrote a newer token since this refresh started: keep it.
      return this.#usable(latest, rejected) ? latest : refreshed;
    }
    // Only what the refresh changed: any other field written since the read above (a new refresh token from
    // a re-consent) is kept by the store's merge. The saved object then holds the whole stored token.
    const saved = new OAuthToken({
      id,
      accessToken: refreshed.accessToken,
      expiryTime: refreshed.expiryTime,
      apiDomain: refreshed.apiDomain,
    });
    await this.#store.saveToken(saved);
    return saved;
  }

  /** One refresh request; a throttled answer pauses this refresh token's refreshes for `throttleCooldownMs`. */
  async #requestRefresh(token: OAuthToken, rejected: string | null, operation: OAuthOperation): Promise<OAuthToken> {
    const refreshToken = token.refreshToken as string;
    const credentials = this.#credentials(token, operation);
    let reply: AccountsToken;
    try {
      reply = await this.#accounts.refreshAccessToken({ refreshToken, ...credentials });
    } catch (error) {
      if (OAuthError.is(error) && error.code === 'THROTTLED') {
        // The pause is the longer of the cooldown and the server's own Retry-After, if it sent one.
        const pauseMs = Math.max(this.throttleCooldownMs, error.retryAfterMs ?? 0);
        if (pauseMs > 0) this.#throttledUntil.set(sha256(refreshToken), this.#now() + pauseMs);
        if (this.#stillValid(token, rejected)) return token;
        throw new OAuthError('THROTTLED', 'the accounts server throttled the refresh', {
          operation,
          status: error.status ?? undefined,
          accountsError: error.accountsError ?? undefined,
          retryAfterMs: pauseMs > 0 ? pauseMs : undefined,
        });
      }
      throw error;
    }
    const refreshed = token.clone();
    refreshed.clientId = credentials.clientId;
    refreshed.clientSecret = credentials.clientSecret;
    refreshed.accessToken = reply.accessToken;
    refreshed.expiryTime = reply.expiryTime;
    refreshed.apiDomain = reply.apiDomain ?? token.apiDomain ?? this.#defaultApiDomain;
    return refreshed;
  }

  #throttleLeft(refreshToken: string): number {
    const key = sha256(refreshToken);
    const until = this.#throttledUntil.get(key);
    if (until === undefined) return 0;
    const left = until - this.#now();
    if (left <= 0) this.#throttledUntil.delete(key);
    return Math.max(left, 0);
  }

  #whileThrottled(token: OAuthToken, rejected: string | null, leftMs: number, operation: OAuthOperation): OAuthToken {
    if (this.#stillValid(token, rejected)) return token;
    throw new OAuthError('THROTTLED', `refreshes of this token are paused for ${leftMs} ms after the accounts server throttled one`, {
      operation,
      retryAfterMs: leftMs,
    });
  }

  // --- API calls -------------------------------------------------------------------------------------------

  #send(url: string | URL, init: RequestInit, accessToken: string): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Zoho-oauthtoken ${accessToken}`);
    return this.#fetch(url, { ...init, headers });
  }
}

/** A 401 whose body says the access token is not (or no longer) valid. */
async function isRejectedToken(response: Response): Promise<boolean> {
  if (response.status !== 401) return false;
  try {
    const body = (await response.clone().json()) as { code?: unknown };
    return body.code === 'INVALID_OAUTHTOKEN' || body.code === 'INVALID_TOKEN';
  } catch {
    return false;
  }
}
