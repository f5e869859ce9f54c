import { createRequire } from 'node:module';

/**
 * The parts of Zoho's official SDKs (`@zohocrm/typescript-sdk-8.0`, `@zohocrm/nodejs-sdk-8.0`) the bridge
 * touches, described by shape: the bridge never imports their types, so neither SDK is a hard dependency.
 */

/** Zoho's `UserSignature`: one field, the user name (`email` or `email:orgId`). */
export interface ZohoUserSignature {
  getName(): string | null | undefined;
}

/** Zoho's `OAuthToken`, through the getters and setters their stores use. */
export interface ZohoOAuthToken {
  getId(): string | null | undefined;
  setId(id: string | null): void;
  getUserSignature(): ZohoUserSignature | null | undefined;
  setUserSignature(userSignature: ZohoUserSignature | null): void;
  getClientId(): string | null | undefined;
  setClientId(clientId: string | null): void;
  getClientSecret(): string | null | undefined;
  setClientSecret(clientSecret: string | null): void;
  getRedirectURL(): string | null | undefined;
  setRedirectURL(redirectUrl: string | null): void;
  getGrantToken(): string | null | undefined;
  setGrantToken(grantToken: string | null): void;
  getRefreshToken(): string | null | undefined;
  setRefreshToken(refreshToken: string | null): void;
  getAccessToken(): string | null | undefined;
  setAccessToken(accessToken: string | null): void;
  /** The absolute expiry in epoch milliseconds, as text (despite the name). */
  getExpiresIn(): string | number | null | undefined;
  setExpiresIn(expiresIn: string | null): void;
  getAPIDomain(): string | null | undefined;
  setAPIDomain(apiDomain: string | null): void;
}

/**
 * Zoho's `TokenStore` as both SDKs call it: `findToken` fills the given token's empty fields and returns it,
 * `saveToken` sets the stored id on the given token. Their `FileStore` and `DBStore` implement it. Typed
 * loosely (each SDK declares its own `Token`); the bridge checks what comes back at run time.
 */
export interface ZohoTokenStore {
  // biome-ignore lint/suspicious/noExplicitAny: each SDK declares its own Token type
  findToken(token: any): Promise<unknown>;
  findTokenById(id: string): Promise<unknown>;
  // biome-ignore lint/suspicious/noExplicitAny: each SDK declares its own Token type
  saveToken(token: any): Promise<unknown>;
  deleteToken(id: string): Promise<unknown>;
  getTokens(): Promise<unknown>;
  deleteTokens(): unknown;
}

/**
 * What `toZohoTokenStore` returns: the six methods, typed loosely enough to be accepted as the `TokenStore`
 * of either SDK (their token types differ and are not ours to import). The tokens are Zoho `OAuthToken`s.
 */
export interface BridgedZohoTokenStore {
  // biome-ignore lint/suspicious/noExplicitAny: each SDK declares its own Token type; both must accept this store
  findToken(token: any): Promise<any>;
  // biome-ignore lint/suspicious/noExplicitAny: see findToken
  findTokenById(id: string): Promise<any>;
  // biome-ignore lint/suspicious/noExplicitAny: see findToken
  saveToken(token: any): Promise<void>;
  deleteToken(id: string): Promise<void>;
  // biome-ignore lint/suspicious/noExplicitAny: see findToken
  getTokens(): Promise<any[]>;
  deleteTokens(): Promise<void>;
}

/**
 * The classes of one SDK the bridge builds tokens with. Pass the SDK module itself
 * (`await import('@zohocrm/nodejs-sdk-8.0')`): the Node.js SDK's stores ignore tokens of another class.
 */
export interface ZohoSdk {
  OAuthToken: new (...args: never[]) => ZohoOAuthToken;
  UserSignature: new (name: string) => ZohoUserSignature;
  /**
   * The Node.js SDK's base class of stores: its `InitializeBuilder.store()` accepts only instances of it.
   * (The TypeScript SDK exports a namespace under this name, which the bridge ignores.)
   */
  TokenStore?: unknown;
}

const TYPESCRIPT_SDK = '@zohocrm/typescript-sdk-8.0';
let typescriptSdk: ZohoSdk | undefined;

/**
 * The TypeScript SDK's classes, loaded on first use. Only the two modules are loaded, not the whole SDK
 * (thousands of API modules); they are the very classes the SDK's root module exports.
 */
export function defaultSdk(): ZohoSdk {
  if (typescriptSdk === undefined) {
    const load = createRequire(import.meta.url);
    const { OAuthToken } = load(`${TYPESCRIPT_SDK}/dist/models/authenticator/oauth_token.js`) as Pick<ZohoSdk, 'OAuthToken'>;
    const { UserSignature } = load(`${TYPESCRIPT_SDK}/dist/routes/user_signature.js`) as Pick<ZohoSdk, 'UserSignature'>;
    typescriptSdk = { OAuthToken, UserSignature };
  }
  return typescriptSdk;
}

/** True for a Node.js SDK store: those extend the SDK's `TokenStore` class, the TypeScript SDK's extend nothing. */
export function isNodeSdkStore(store: object): boolean {
  for (let prototype = Object.getPrototypeOf(store); prototype !== null; prototype = Object.getPrototypeOf(prototype)) {
    if (prototype.constructor?.name === 'TokenStore' && prototype !== Object.prototype) return true;
  }
  return false;
}
