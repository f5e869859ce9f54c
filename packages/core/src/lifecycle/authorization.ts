import { createHash, randomBytes } from 'node:crypto';
import { TokenStoreError } from '../errors.js';
import { checkBaseUrl } from './accounts-client.js';
import { DATA_CENTER_NAMES, DATA_CENTERS, type DataCenter, isDataCenter } from './data-centers.js';

const AUTHORIZATION = 'authorizationUrl';

export interface AuthorizationUrlInput {
  /** The accounts server's base URL (an emulator, a private deployment). Overrides `dataCenter`. */
  accountsUrl?: string;
  /** Picks Zoho's accounts server; default `US`. */
  dataCenter?: DataCenter;
  clientId: string;
  /** Exactly as registered for the client; the grant code is then exchanged with the same URL. */
  redirectUrl: string;
  /** Zoho scopes, as a list or as Zoho's comma-separated text (`ZohoCRM.users.READ,ZohoCRM.modules.ALL`). */
  scope: string | readonly string[];
  /** An unguessable value the callback must see again (CSRF); see `randomState`. */
  state: string;
  /** PKCE (RFC 7636): the S256 challenge of a verifier kept by the app, see `createPkce`. */
  codeChallenge?: string;
  /** `offline` (the default) gives a refresh token; `online` an access token only. */
  accessType?: 'offline' | 'online';
  /** `consent` (the default) asks the user every time, so Zoho hands out a refresh token again. */
  prompt?: 'consent' | null;
}

function invalid(message: string): TokenStoreError {
  return TokenStoreError.invalidArgument({ store: AUTHORIZATION, operation: 'open' }, message);
}

function nonEmpty(value: unknown, name: string): string {
  if (typeof value !== 'string' || value === '') throw invalid(`${name} must be a non-empty string`);
  return value;
}

/**
 * The address of the accounts server's authorisation page (`<accounts>/oauth/v2/auth?...`) to send a user's
 * browser to. After consent the server redirects to `redirectUrl` with `code` and `state`; exchange the code
 * with `TokenManager.exchangeCode` (and the PKCE verifier, when a challenge was sent).
 */
export function authorizationUrl(input: AuthorizationUrlInput): string {
  if (typeof input !== 'object' || input === null) throw invalid('authorizationUrl takes an object');
  if (input.dataCenter !== undefined && !isDataCenter(input.dataCenter)) {
    throw invalid(`dataCenter must be one of ${DATA_CENTER_NAMES.join(', ')}`);
  }
  const accountsUrl =
    input.accountsUrl === undefined
      ? DATA_CENTERS[input.dataCenter ?? 'US'].accountsUrl
      : checkBaseUrl(input.accountsUrl, 'accountsUrl', AUTHORIZATION);
  const scopes = typeof input.scope === 'string' ? [input.scope] : Array.isArray(input.scope) ? input.scope : [];
  if (scopes.length === 0 || scopes.some((scope) => typeof scope !== 'string' || scope === '')) {
    throw invalid('scope must be a non-empty string or a list of them');
  }
  const accessType = input.accessType ?? 'offline';
  if (accessType !== 'offline' && accessType !== 'online') throw invalid("accessType must be 'offline' or 'online'");
  const prompt = input.prompt === undefined ? 'consent' : input.prompt;
  if (prompt !== null && prompt !== 'consent') throw invalid("prompt must be 'consent' or null");
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: nonEmpty(input.clientId, 'clientId'),
    scope: scopes.join(','),
    redirect_uri: nonEmpty(input.redirectUrl, 'redirectUrl'),
    state: nonEmpty(input.state, 'state'),
    access_type: accessType,
  });
  if (prompt !== null) query.set('prompt', prompt);
  if (input.codeChallenge !== undefined) {
    if (typeof input.codeChallenge !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(input.codeChallenge)) {
      throw invalid('codeChallenge must be an S256 challenge (43 base64url characters), as createPkce makes it');
    }
    query.set('code_challenge', input.codeChallenge);
    query.set('code_challenge_method', 'S256');
  }
  return `${accountsUrl}/oauth/v2/auth?${query}`;
}

/** A PKCE pair (RFC 7636, S256): keep `codeVerifier` with the user's sign-in, send `codeChallenge` in the URL. */
export function createPkce(): { codeVerifier: string; codeChallenge: string } {
  const codeVerifier = randomBytes(32).toString('base64url'); // 43 characters
  return { codeVerifier, codeChallenge: pkceChallenge(codeVerifier) };
}

/** The S256 challenge of a code verifier: base64url of its SHA-256, without padding. */
export function pkceChallenge(codeVerifier: string): string {
  if (typeof codeVerifier !== 'string' || !/^[A-Za-z0-9._~-]{43,128}$/.test(codeVerifier)) {
    throw invalid('a code verifier is 43 to 128 characters of A-Z, a-z, 0-9, -, ., _ and ~');
  }
  return createHash('sha256').update(codeVerifier, 'ascii').digest('base64url');
}

/** A random `state` value (32 bytes, base64url). */
export function randomState(): string {
  return randomBytes(32).toString('base64url');
}
