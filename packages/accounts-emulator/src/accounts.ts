// Zoho's accounts rules as plain state: clients, grant codes, refresh and access tokens, and the limits on them.
// No HTTP here; server.ts turns requests into calls and results into replies.
import { createHash, randomBytes } from 'node:crypto';

export const LIMITS = {
  grantCodeLifetimeMs: 3 * 60_000,
  refreshWindowMs: 10 * 60_000,
  refreshesPerWindow: 10,
  liveAccessTokensPerRefreshToken: 15,
  refreshTokensPerUserAndClient: 20,
} as const;

export const THROTTLED_DESCRIPTION = 'You have made too many requests continuously. Please try again after some time.';

export interface Client {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  /** Every redirect URI registered for the client (`redirectUri` first); the authorisation page accepts only these. */
  redirectUris: string[];
}

/** The code_challenge of a code_verifier with method S256 (RFC 7636): base64url of its SHA-256, no padding. */
export function s256(codeVerifier: string): string {
  return createHash('sha256').update(codeVerifier, 'ascii').digest('base64url');
}

/** RFC 7636: 43 to 128 characters of A-Z a-z 0-9 - . _ ~ */
const CODE_VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/;

export interface User {
  id: string;
  email: string;
  orgId: string;
}

interface GrantCode {
  clientId: string;
  user: User;
  redirectUri: string;
  scope: string;
  issuedAt: number;
  used: boolean;
  /** PKCE: the S256 code_challenge the authorisation request carried; the exchange must bring its verifier. */
  codeChallenge: string | null;
}

interface AccessToken {
  accessToken: string;
  refreshToken: RefreshToken;
  expiryTime: number;
  invalidated: boolean;
}

interface RefreshToken {
  refreshToken: string;
  clientId: string;
  user: User;
  scope: string;
  revoked: boolean;
  /** When each successful refresh happened, oldest first, pruned to the throttle window. */
  refreshTimes: number[];
  /** Access tokens issued from it, oldest first; invalidated and expired ones are pruned. */
  accessTokens: AccessToken[];
}

/** A reply body and its HTTP status; Zoho sends most accounts errors with status 200. */
export interface Reply {
  status: number;
  body: Record<string, unknown>;
  /** An HTML page sent instead of the JSON body (the authorisation pages). */
  html?: string;
  headers?: Record<string, string>;
}

export interface AccountsOptions {
  clock: () => number;
  accessTokenLifetimeMs: number;
  apiDomain: string;
  expiresInMilliseconds: boolean;
  throttleStatus: number;
}

export interface EmulatorCounts {
  /** Every POST to /oauth/v2/token, whatever its outcome. */
  tokenRequests: number;
  /** Successful grant code exchanges. */
  codeExchanges: number;
  /** Successful refreshes. */
  refreshes: number;
  /** Successful revocations. */
  revocations: number;
  /** Refreshes refused by the 10-per-10-minutes limit. */
  throttled: number;
}

/** Zoho's token shape: `1000.` and two groups of 32 hex digits. */
export function zohoToken(): string {
  return `1000.${randomBytes(16).toString('hex')}.${randomBytes(16).toString('hex')}`;
}

function digits(count: number): string {
  let text = '';
  for (const byte of randomBytes(count)) text += String(byte % 10);
  return text.replace(/^0/, '1');
}

const error = (code: string, status = 200): Reply => ({ status, body: { error: code } });

export class Accounts {
  readonly counts: EmulatorCounts = { tokenRequests: 0, codeExchanges: 0, refreshes: 0, revocations: 0, throttled: 0 };
  private readonly clients = new Map<string, Client>();
  private readonly users = new Map<string, User>();
  private readonly grantCodes = new Map<string, GrantCode>();
  private readonly refreshTokens = new Map<string, RefreshToken>();
  private readonly accessTokens = new Map<string, AccessToken>();
  /** Refresh tokens by client id and user email, oldest first: the 21st pushes out the first. */
  private readonly refreshTokensByUser = new Map<string, RefreshToken[]>();

  constructor(private readonly options: AccountsOptions) {}

  registerClient(input: { clientId?: string; clientSecret?: string; redirectUri: string; redirectUris?: string[] }): Client {
    if (typeof input?.redirectUri !== 'string' || input.redirectUri === '') throw new TypeError('registerClient needs a redirectUri');
    const more = input.redirectUris ?? [];
    if (!Array.isArray(more) || more.some((uri) => typeof uri !== 'string' || uri === '')) {
      throw new TypeError('redirectUris must be an array of non-empty strings');
    }
    const client: Client = {
      clientId: input.clientId ?? `1000.${randomBytes(15).toString('hex').toUpperCase()}`,
      clientSecret: input.clientSecret ?? randomBytes(21).toString('hex'),
      redirectUri: input.redirectUri,
      redirectUris: [...new Set([input.redirectUri, ...more])],
    };
    if (this.clients.has(client.clientId)) throw new Error(`client ${client.clientId} is already registered`);
    this.clients.set(client.clientId, client);
    return { ...client, redirectUris: [...client.redirectUris] };
  }

  /** The registered client with this id, or undefined. */
  client(clientId: string): Client | undefined {
    return this.clients.get(clientId);
  }

  issueGrantCode(input: {
    clientId: string;
    userEmail: string;
    orgId?: string;
    redirectUri?: string;
    scope?: string;
    codeChallenge?: string;
  }): string {
    const client = this.clients.get(input?.clientId);
    if (!client) throw new Error(`unknown client ${input?.clientId}; call registerClient first`);
    if (typeof input.userEmail !== 'string' || input.userEmail === '') throw new TypeError('issueGrantCode needs a userEmail');
    const code = zohoToken();
    this.grantCodes.set(code, {
      clientId: client.clientId,
      user: this.user(input.userEmail, input.orgId),
      redirectUri: input.redirectUri ?? client.redirectUri,
      scope: input.scope ?? 'ZohoCRM.modules.ALL,ZohoCRM.users.READ',
      issuedAt: this.options.clock(),
      used: false,
      codeChallenge: input.codeChallenge ?? null,
    });
    return code;
  }

  /** POST /oauth/v2/token, with the request's fields (query and form body merged). */
  token(fields: URLSearchParams): Reply {
    this.counts.tokenRequests++;
    const grantType = fields.get('grant_type');
    if (grantType !== 'authorization_code' && grantType !== 'refresh_token') {
      return error(grantType ? 'unsupported_grant_type' : 'invalid_request');
    }
    const client = this.clients.get(fields.get('client_id') ?? '');
    if (!client || client.clientSecret !== fields.get('client_secret')) return error('invalid_client');
    return grantType === 'authorization_code' ? this.exchangeCode(client, fields) : this.refresh(client, fields);
  }

  /** POST /oauth/v2/token/revoke: a refresh token and all its access tokens; an access token alone. */
  revoke(token: string | null): Reply {
    if (!token) return error('invalid_request');
    const refreshToken = this.refreshTokens.get(token);
    if (refreshToken && !refreshToken.revoked) {
      this.dropRefreshToken(refreshToken);
      this.counts.revocations++;
    } else {
      const accessToken = this.accessTokens.get(token);
      if (accessToken && !accessToken.invalidated) {
        this.dropAccessToken(accessToken);
        this.counts.revocations++;
      }
    }
    // Like RFC 7009: an unknown or already revoked token is not an error, so revoking twice is harmless.
    return { status: 200, body: { status: 'success' } };
  }

  /** The user an `Authorization: Zoho-oauthtoken ...` value belongs to, or null when it is not a live access token. */
  userOf(accessTokenValue: string): User | null {
    const accessToken = this.accessTokens.get(accessTokenValue);
    if (!accessToken || accessToken.invalidated || accessToken.refreshToken.revoked) return null;
    if (this.options.clock() >= accessToken.expiryTime) return null;
    return accessToken.refreshToken.user;
  }

  private exchangeCode(client: Client, fields: URLSearchParams): Reply {
    const grant = this.grantCodes.get(fields.get('code') ?? '');
    const now = this.options.clock();
    if (!grant || grant.used || grant.clientId !== client.clientId || now - grant.issuedAt >= LIMITS.grantCodeLifetimeMs) {
      return error('invalid_code');
    }
    if (fields.get('redirect_uri') !== grant.redirectUri) return error('invalid_redirect_uri');
    if (grant.codeChallenge !== null) {
      // PKCE: the code is only good with the verifier of its challenge. A wrong or missing one uses the code up,
      // so an intercepted code cannot be tried against guessed verifiers.
      const verifier = fields.get('code_verifier') ?? '';
      if (!CODE_VERIFIER.test(verifier) || s256(verifier) !== grant.codeChallenge) {
        grant.used = true;
        return error('invalid_code');
      }
    }
    grant.used = true;
    const refreshToken: RefreshToken = {
      refreshToken: zohoToken(),
      clientId: client.clientId,
      user: grant.user,
      scope: grant.scope,
      revoked: false,
      refreshTimes: [],
      accessTokens: [],
    };
    this.refreshTokens.set(refreshToken.refreshToken, refreshToken);
    const key = `${client.clientId}\n${grant.user.email}`;
    const ofUser = this.refreshTokensByUser.get(key) ?? [];
    this.refreshTokensByUser.set(key, ofUser);
    ofUser.push(refreshToken);
    while (ofUser.length > LIMITS.refreshTokensPerUserAndClient) this.dropRefreshToken(ofUser[0]!);
    this.counts.codeExchanges++;
    const { access_token, ...rest } = this.issueAccessToken(refreshToken, now);
    return { status: 200, body: { access_token, refresh_token: refreshToken.refreshToken, ...rest } };
  }

  private refresh(client: Client, fields: URLSearchParams): Reply {
    const refreshToken = this.refreshTokens.get(fields.get('refresh_token') ?? '');
    if (!refreshToken || refreshToken.revoked || refreshToken.clientId !== client.clientId) return error('invalid_code');
    const now = this.options.clock();
    refreshToken.refreshTimes = refreshToken.refreshTimes.filter((time) => now - time < LIMITS.refreshWindowMs);
    if (refreshToken.refreshTimes.length >= LIMITS.refreshesPerWindow) {
      this.counts.throttled++;
      return {
        status: this.options.throttleStatus,
        body: { error: 'Access Denied', error_description: THROTTLED_DESCRIPTION, status: 'failure' },
      };
    }
    refreshToken.refreshTimes.push(now);
    this.counts.refreshes++;
    return { status: 200, body: this.issueAccessToken(refreshToken, now) };
  }

  private issueAccessToken(refreshToken: RefreshToken, now: number): Record<string, unknown> & { access_token: string } {
    const accessToken: AccessToken = {
      accessToken: zohoToken(),
      refreshToken,
      expiryTime: now + this.options.accessTokenLifetimeMs,
      invalidated: false,
    };
    for (const expired of refreshToken.accessTokens.filter((live) => now >= live.expiryTime)) this.dropAccessToken(expired);
    refreshToken.accessTokens.push(accessToken);
    this.accessTokens.set(accessToken.accessToken, accessToken);
    while (refreshToken.accessTokens.length > LIMITS.liveAccessTokensPerRefreshToken) this.dropAccessToken(refreshToken.accessTokens[0]!);
    const seconds = Math.round(this.options.accessTokenLifetimeMs / 1000);
    const expiresIn = this.options.expiresInMilliseconds
      ? { expires_in: this.options.accessTokenLifetimeMs, expires_in_sec: seconds }
      : { expires_in: seconds };
    return {
      access_token: accessToken.accessToken,
      scope: refreshToken.scope,
      api_domain: this.options.apiDomain,
      token_type: 'Bearer',
      ...expiresIn,
    };
  }

  private dropAccessToken(accessToken: AccessToken): void {
    accessToken.invalidated = true;
    this.accessTokens.delete(accessToken.accessToken);
    const ofRefreshToken = accessToken.refreshToken.accessTokens;
    ofRefreshToken.splice(ofRefreshToken.indexOf(accessToken), 1);
  }

  private dropRefreshToken(refreshToken: RefreshToken): void {
    refreshToken.revoked = true;
    for (const accessToken of [...refreshToken.accessTokens]) this.dropAccessToken(accessToken);
    const ofUser = this.refreshTokensByUser.get(`${refreshToken.clientId}\n${refreshToken.user.email}`) ?? [];
    const index = ofUser.indexOf(refreshToken);
    if (index >= 0) ofUser.splice(index, 1);
    // Kept in the map (revoked) so a later use answers invalid_code like a never-seen token would.
  }

  private user(email: string, orgId: string | undefined): User {
    const known = this.users.get(email);
    if (known) {
      if (orgId !== undefined) known.orgId = orgId;
      return known;
    }
    const user: User = { id: digits(19), email, orgId: orgId ?? digits(9) };
    this.users.set(email, user);
    return user;
  }
}
