// What applications use: the token, the contract, the error, the reference store.
// Store authors find the rules and plumbing in `@crm/core/store-kit`.
export type { TokenStoreErrorCode, TokenStoreErrorDetails, TokenStoreOperation } from './errors.js';
export { TOKEN_STORE_ERROR_CODES, TokenStoreError } from './errors.js';
export type { AccountsClientOptions, AccountsToken, RequestOptions } from './lifecycle/accounts-client.js';
export { AccountsClient } from './lifecycle/accounts-client.js';
export type { AuthorizationUrlInput } from './lifecycle/authorization.js';
export { authorizationUrl, createPkce, pkceChallenge, randomState } from './lifecycle/authorization.js';
export type { DataCenter, DataCenterUrls } from './lifecycle/data-centers.js';
export { accountsUrlFor, DATA_CENTERS } from './lifecycle/data-centers.js';
export type { OAuthErrorCode, OAuthErrorDetails, OAuthOperation } from './lifecycle/oauth-error.js';
export { OAUTH_ERROR_CODES, OAuthError } from './lifecycle/oauth-error.js';
export type { TokenManagerOptions, TokenReference } from './lifecycle/token-manager.js';
export { refreshLockKey, TokenManager } from './lifecycle/token-manager.js';
export type { HeldLock, LockingTokenStore, LockOptions, TokenLocking } from './lock.js';
export { supportsLocking } from './lock.js';
export { MemoryTokenStore } from './memory-store.js';
export type { OpenTokenStoreOptions, StoreUrlTarget } from './open-store.js';
export { openTokenStore, parseStoreUrl, redactUrl } from './open-store.js';
export type { TokenStore } from './store.js';
export type { OAuthTokenFields, TokenField } from './token.js';
export { MAX_EXPIRY_TIME, OAuthToken, redactSecret, SECRET_FIELDS, TOKEN_FIELDS, UserSignature } from './token.js';
