import { TokenStoreError } from './errors.js';

const DETAILS = { store: 'OAuthToken', operation: 'token' } as const;
const TOKEN_BRAND = Symbol.for('@crm/core/OAuthToken');
const INSPECT = Symbol.for('nodejs.util.inspect.custom');

/** The largest absolute time a JavaScript Date can hold, in epoch milliseconds. */
export const MAX_EXPIRY_TIME = 8.64e15;

/** Who a token belongs to. Zoho's SDKs store `<email>:<orgId>` here. */
export class UserSignature {
  readonly name: string;

  constructor(name: string) {
    if (typeof name !== 'string' || name.length === 0) {
      throw TokenStoreError.invalidArgument(DETAILS, 'UserSignature needs a non-empty string name');
    }
    this.name = checkString('UserSignature name', name) as string;
    // Frozen: tokens and their copies may share one signature, so nobody may rename it in place.
    Object.freeze(this);
  }
}

/** The fields of a token as plain values, used to build one and to serialise one. */
export interface OAuthTokenFields {
  id?: string | null;
  userSignature?: UserSignature | null;
  clientId?: string | null;
  clientSecret?: string | null;
  redirectUrl?: string | null;
  grantToken?: string | null;
  refreshToken?: string | null;
  accessToken?: string | null;
  /** Absolute expiry time in epoch milliseconds (not a duration, despite Zoho's `expiresIn`). */
  expiryTime?: number | null;
  apiDomain?: string | null;
}

/** Every field name, in Zoho's column order. */
export const TOKEN_FIELDS = [
  'id',
  'userSignature',
  'clientId',
  'clientSecret',
  'refreshToken',
  'accessToken',
  'grantToken',
  'expiryTime',
  'redirectUrl',
  'apiDomain',
] as const;

export type TokenField = (typeof TOKEN_FIELDS)[number];

/** Fields that must never be shown whole. */
export const SECRET_FIELDS = ['clientSecret', 'grantToken', 'refreshToken', 'accessToken'] as const;

/** Shows the last four characters of a long secret, nothing of a short one. */
export function redactSecret(secret: string | null): string | null {
  if (secret === null) return null;
  return secret.length >= 16 ? `[redacted …${secret.slice(-4)}]` : '[redacted]';
}

/** U+0000: PostgreSQL cannot store it in text, C drivers cut strings at it; no store keeps it. */
const NUL = '\u0000';

/** A UTF-16 surrogate without its partner: no UTF-8 backend can store it, it would read back as U+FFFD. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function checkString(field: string, value: unknown): string | null {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value !== 'string') throw TokenStoreError.invalidArgument(DETAILS, `${field} must be a string or null`);
  if (LONE_SURROGATE.test(value))
    throw TokenStoreError.invalidArgument(DETAILS, `${field} holds a lone UTF-16 surrogate, which no store can keep`);
  if (value.includes(NUL))
    throw TokenStoreError.invalidArgument(DETAILS, `${field} holds a NUL character (U+0000), which no store can keep`);
  return value;
}

function checkExpiryTime(value: unknown): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || Math.abs(value) > MAX_EXPIRY_TIME) {
    throw TokenStoreError.invalidArgument(
      DETAILS,
      `expiryTime must be a whole number of epoch milliseconds within ±${MAX_EXPIRY_TIME}, or null`,
    );
  }
  return value;
}

function checkUserSignature(value: unknown): UserSignature | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object' || typeof (value as UserSignature).name !== 'string') {
    throw TokenStoreError.invalidArgument(DETAILS, 'userSignature must be a UserSignature or null');
  }
  const name = (value as UserSignature).name;
  if (name === '') return null;
  // Only a real, frozen signature is kept as it is; anything else that looks like one is rebuilt (and checked).
  const genuine = Object.getPrototypeOf(value) === UserSignature.prototype && Object.isFrozen(value);
  return genuine ? (value as UserSignature) : new UserSignature(name);
}

/**
 * A Zoho CRM OAuth token. Fields are plain properties; an absent field is `null`, and an empty string
 * counts as absent, as in Zoho's SDKs. Secrets are redacted in `util.inspect`, `toString` and
 * `JSON.stringify`; stores serialise through `toFields()`.
 */
export class OAuthToken {
  id: string | null;
  userSignature: UserSignature | null;
  clientId: string | null;
  clientSecret: string | null;
  redirectUrl: string | null;
  grantToken: string | null;
  refreshToken: string | null;
  accessToken: string | null;
  expiryTime: number | null;
  apiDomain: string | null;

  constructor(fields: OAuthTokenFields = {}) {
    if (typeof fields !== 'object' || fields === null) {
      throw TokenStoreError.invalidArgument(DETAILS, 'OAuthToken takes an object of fields');
    }
    this.id = checkString('id', fields.id);
    this.userSignature = checkUserSignature(fields.userSignature);
    this.clientId = checkString('clientId', fields.clientId);
    this.clientSecret = checkString('clientSecret', fields.clientSecret);
    this.redirectUrl = checkString('redirectUrl', fields.redirectUrl);
    this.grantToken = checkString('grantToken', fields.grantToken);
    this.refreshToken = checkString('refreshToken', fields.refreshToken);
    this.accessToken = checkString('accessToken', fields.accessToken);
    this.expiryTime = checkExpiryTime(fields.expiryTime);
    this.apiDomain = checkString('apiDomain', fields.apiDomain);
    Object.defineProperty(this, TOKEN_BRAND, { value: true });
  }

  /** True for an OAuthToken from any copy of this package (ESM and CommonJS builds alike). */
  static isToken(value: unknown): value is OAuthToken {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[TOKEN_BRAND] === true;
  }

  /** The user name (`userSignature.name`), or null. */
  get userName(): string | null {
    return this.userSignature?.name ?? null;
  }

  /**
   * Expired when less than `skewMs` remain before `expiryTime`, or when the expiry is unknown.
   * Zoho's SDKs use the same 5-second margin.
   */
  isExpired(now: number = Date.now(), skewMs = 5000): boolean {
    if (this.expiryTime === null) return true;
    return this.expiryTime - now < skewMs;
  }

  /** All fields as plain values, secrets included. The explicit way for a store to serialise a token. */
  toFields(): Required<OAuthTokenFields> {
    return {
      id: this.id,
      userSignature: this.userSignature,
      clientId: this.clientId,
      clientSecret: this.clientSecret,
      redirectUrl: this.redirectUrl,
      grantToken: this.grantToken,
      refreshToken: this.refreshToken,
      accessToken: this.accessToken,
      expiryTime: this.expiryTime,
      apiDomain: this.apiDomain,
    };
  }

  /** A new token with the same fields. */
  clone(): OAuthToken {
    return new OAuthToken(this.toFields());
  }

  /**
   * Re-reads every field through the same checks as the constructor, so a token whose properties
   * were assigned by hand (`token.accessToken = 42`) is caught before it reaches storage.
   */
  validate(): void {
    new OAuthToken(this.toFields());
  }

  /** The fields with secrets redacted: what logs, `JSON.stringify` and `util.inspect` see. */
  toJSON(): Record<string, string | number | null> {
    const shown: Record<string, string | number | null> = {
      id: this.id,
      userName: this.userName,
      clientId: this.clientId,
      redirectUrl: this.redirectUrl,
      expiryTime: this.expiryTime,
      apiDomain: this.apiDomain,
    };
    for (const field of SECRET_FIELDS) shown[field] = redactSecret(this[field]);
    return shown;
  }

  toString(): string {
    return `OAuthToken ${JSON.stringify(this.toJSON())}`;
  }

  [INSPECT](): string {
    return this.toString();
  }
}
