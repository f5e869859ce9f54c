import { OAuthToken, TokenStoreError, type TokenStoreOperation, UserSignature } from '@crm/core';
import { parseExpiryTime, type TokenRow, tokenToRow } from '@crm/core/store-kit';
import type { ZohoOAuthToken, ZohoSdk } from './zoho-sdk.js';

/**
 * The one pair of mappings between Zoho's token objects and ours, through a row of Zoho's columns
 * (`expiry_time` as decimal text, `''` as absent, as in every Zoho store).
 */

const GETTERS = [
  'getId',
  'getUserSignature',
  'getClientId',
  'getClientSecret',
  'getRefreshToken',
  'getAccessToken',
  'getGrantToken',
  'getExpiresIn',
  'getRedirectURL',
  'getAPIDomain',
] as const;

/** True for an object with every getter of Zoho's OAuthToken. */
export function isZohoToken(value: unknown): value is ZohoOAuthToken {
  return (
    typeof value === 'object' &&
    value !== null &&
    GETTERS.every((getter) => typeof (value as unknown as Record<string, unknown>)[getter] === 'function')
  );
}

function text(value: unknown): string | null {
  if (value === null || value === undefined || value === '') return null;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  return value as string; // anything else is refused by tokenFromRow / the OAuthToken constructor, by field name
}

/** Zoho's token as a row of Zoho's columns. */
export function zohoTokenToRow(token: ZohoOAuthToken): TokenRow {
  const signature = token.getUserSignature();
  const userName = signature == null ? null : (signature.getName?.() ?? (signature as { name?: unknown }).name);
  return {
    id: text(token.getId()),
    user_name: text(userName),
    client_id: text(token.getClientId()),
    client_secret: text(token.getClientSecret()),
    refresh_token: text(token.getRefreshToken()),
    access_token: text(token.getAccessToken()),
    grant_token: text(token.getGrantToken()),
    expiry_time: text(token.getExpiresIn()),
    redirect_url: text(token.getRedirectURL()),
    api_domain: text(token.getAPIDomain()),
  };
}

/**
 * What Zoho's SDK hands our store (a token it is about to look up or save) as our token. A field our token
 * cannot hold (not text, an expiry that is not a whole number of epoch ms, a NUL) is INVALID_ARGUMENT.
 */
export function tokenFromZohoArgument(token: unknown, store: string, operation: TokenStoreOperation): OAuthToken {
  if (!isZohoToken(token)) throw TokenStoreError.invalidArgument({ store, operation }, 'expected a Zoho SDK OAuthToken');
  return rowToToken(zohoTokenToRow(token), (reason) => TokenStoreError.invalidArgument({ store, operation }, reason));
}

/** What Zoho's store returned, as our token: a value our token cannot hold (or no id, when one is needed) is CORRUPT_DATA. */
export function tokenFromZohoStored(token: unknown, store: string, operation: TokenStoreOperation, needsId = true): OAuthToken {
  const corrupt = (reason: string) =>
    TokenStoreError.corrupt({ store, operation }, `the Zoho store returned a token that cannot be read: ${reason}`);
  if (!isZohoToken(token)) throw corrupt('not a token object');
  const converted = rowToToken(zohoTokenToRow(token), corrupt);
  if (needsId && converted.id === null) throw corrupt('it has no id');
  return converted;
}

function rowToToken(row: TokenRow, fail: (reason: string) => TokenStoreError): OAuthToken {
  try {
    return new OAuthToken({
      id: row.id,
      userSignature: row.user_name === null ? null : new UserSignature(row.user_name),
      clientId: row.client_id,
      clientSecret: row.client_secret,
      refreshToken: row.refresh_token,
      accessToken: row.access_token,
      grantToken: row.grant_token,
      expiryTime: parseExpiryTime(row.expiry_time, 'ZohoToken', 'token'),
      redirectUrl: row.redirect_url,
      apiDomain: row.api_domain,
    });
  } catch (error) {
    // The checks name the field, never the value.
    throw fail(TokenStoreError.is(error) ? error.message.replace(/^[^:]*: /, '') : 'a field holds a value of the wrong type');
  }
}

/** Writes every field of our token into Zoho's, absent fields as null. */
export function writeIntoZohoToken(target: ZohoOAuthToken, token: OAuthToken, sdk: ZohoSdk): void {
  const row = tokenToRow(token);
  target.setId(row.id);
  target.setUserSignature(row.user_name === null ? null : new sdk.UserSignature(row.user_name));
  target.setClientId(row.client_id);
  target.setClientSecret(row.client_secret);
  target.setRefreshToken(row.refresh_token);
  target.setAccessToken(row.access_token);
  target.setGrantToken(row.grant_token);
  target.setExpiresIn(row.expiry_time);
  target.setRedirectURL(row.redirect_url);
  target.setAPIDomain(row.api_domain);
}

/** A new token of the SDK's own class holding our token's fields, built as Zoho's stores build theirs. */
export function newZohoToken(token: OAuthToken, sdk: ZohoSdk): ZohoOAuthToken {
  const created = Reflect.construct(sdk.OAuthToken, []) as ZohoOAuthToken;
  writeIntoZohoToken(created, token, sdk);
  return created;
}
