export type { TokenStoreErrorCode, TokenStoreErrorDetails, TokenStoreOperation } from './errors.js';
export { NETWORK_ERROR_CODES, TOKEN_STORE_ERROR_CODES, TokenStoreError } from './errors.js';
export type { LookupField, LookupKey, SavePlan, TokenLookup } from './match.js';
export {
  checkIdArgument,
  checkSaveArgument,
  checkTokenArgument,
  copyStoredFields,
  fillAbsentFields,
  isSaveable,
  LOOKUP_COLUMNS,
  lookupKey,
  matchesLookupKey,
  mergeForSave,
  newTokenId,
  planSave,
  TOKEN_ID_LENGTH,
} from './match.js';
export { MemoryTokenStore } from './memory-store.js';
export type { TokenColumn, TokenRow } from './row.js';
export { parseExpiryTime, TOKEN_COLUMNS, tokenFromRow, tokenToRow } from './row.js';
export type { TokenStore } from './store.js';
export type { OAuthTokenFields, TokenField } from './token.js';
export { MAX_EXPIRY_TIME, OAuthToken, redactSecret, SECRET_FIELDS, TOKEN_FIELDS, UserSignature } from './token.js';
