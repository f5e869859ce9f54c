import { TokenStoreError, type TokenStoreOperation } from './errors.js';
import { MAX_EXPIRY_TIME, OAuthToken, UserSignature } from './token.js';

/** Zoho's column names, in the order of Zoho's tables and CSV files. */
export const TOKEN_COLUMNS = [
  'id',
  'user_name',
  'client_id',
  'client_secret',
  'refresh_token',
  'access_token',
  'grant_token',
  'expiry_time',
  'redirect_url',
  'api_domain',
] as const;

export type TokenColumn = (typeof TOKEN_COLUMNS)[number];

/**
 * A token as Zoho's stores keep it: one text value or null per column. `expiry_time` holds the epoch
 * milliseconds as decimal text, as in Zoho's `varchar(20)` column and CSV files.
 */
export type TokenRow = Record<TokenColumn, string | null>;

/** The row for a token. Absent fields become null. */
export function tokenToRow(token: OAuthToken): TokenRow {
  return {
    id: token.id,
    user_name: token.userSignature?.name ?? null,
    client_id: token.clientId,
    client_secret: token.clientSecret,
    refresh_token: token.refreshToken,
    access_token: token.accessToken,
    grant_token: token.grantToken,
    expiry_time: token.expiryTime === null ? null : String(token.expiryTime),
    redirect_url: token.redirectUrl,
    api_domain: token.apiDomain,
  };
}

/**
 * Reads Zoho's `expiry_time` text (or a number a driver already parsed) as epoch milliseconds.
 * Empty means absent; anything else that is not a whole number in range is CORRUPT_DATA.
 */
export function parseExpiryTime(
  value: string | number | bigint | null | undefined,
  store: string,
  operation: TokenStoreOperation,
): number | null {
  if (value === null || value === undefined || value === '') return null;
  const expiryTime = typeof value === 'string' ? (/^-?\d{1,16}$/.test(value.trim()) ? Number(value.trim()) : Number.NaN) : Number(value);
  if (!Number.isSafeInteger(expiryTime) || Math.abs(expiryTime) > MAX_EXPIRY_TIME) {
    throw TokenStoreError.corrupt({ store, operation }, 'a stored expiry_time is not a whole number of epoch milliseconds');
  }
  return expiryTime;
}

/** A token's values in TOKEN_COLUMNS order: the parameters of an INSERT over every column. */
export function tokenToValues(token: OAuthToken): (string | null)[] {
  const row = tokenToRow(token);
  return TOKEN_COLUMNS.map((column) => row[column]);
}

/**
 * The token for a row. Empty strings read as null, like Zoho's SDKs. A row without an id, with a column
 * that is not text, or with a value no token may hold (a NUL, a lone surrogate) is CORRUPT_DATA.
 */
export function tokenFromRow(
  row: Partial<Record<TokenColumn, string | number | bigint | null>>,
  store: string,
  operation: TokenStoreOperation,
): OAuthToken {
  if (typeof row !== 'object' || row === null)
    throw TokenStoreError.corrupt({ store, operation }, 'a stored token is not a row of columns');
  const text = (column: TokenColumn): string | null => {
    const value = row[column];
    if (value === null || value === undefined || value === '') return null;
    if (typeof value !== 'string') throw TokenStoreError.corrupt({ store, operation }, `stored column ${column} is not text`);
    return value;
  };
  const id = text('id');
  if (id === null) throw TokenStoreError.corrupt({ store, operation }, 'a stored token has no id');
  const userName = text('user_name');
  const expiryTime = parseExpiryTime(row.expiry_time, store, operation);
  try {
    return new OAuthToken({
      id,
      userSignature: userName === null ? null : new UserSignature(userName),
      clientId: text('client_id'),
      clientSecret: text('client_secret'),
      refreshToken: text('refresh_token'),
      accessToken: text('access_token'),
      grantToken: text('grant_token'),
      expiryTime,
      redirectUrl: text('redirect_url'),
      apiDomain: text('api_domain'),
    });
  } catch (error) {
    // The token's own check names the field, never the value.
    const reason = TokenStoreError.is(error) ? error.message.replace(/^[^:]*: /, '') : 'invalid value';
    throw TokenStoreError.corrupt({ store, operation }, `a stored token cannot be read: ${reason}`);
  }
}
