export { TOKEN_STORE_ERROR_CODES, TokenStoreError } from './errors.js';
export type { TokenStoreErrorCode, TokenStoreErrorDetails, TokenStoreOperation } from './errors.js';
export { MAX_EXPIRY_TIME, OAuthToken, SECRET_FIELDS, TOKEN_FIELDS, UserSignature, redactSecret } from './token.js';
export type { OAuthTokenFields, TokenField } from './token.js';
export type { TokenStore } from './store.js';
export {
  LOOKUP_COLUMNS,
  TOKEN_ID_LENGTH,
  checkIdArgument,
  checkSaveArgument,
  checkTokenArgument,
  copyStoredFields,
  fillAbsentFields,
  isSaveable,
  lookupKey,
  matchesLookupKey,
  mergeForSave,
  newTokenId,
  planSave,
} from './match.js';
export type { LookupField, LookupKey, SavePlan, TokenLookup } from './match.js';
export { TOKEN_COLUMNS, parseExpiryTime, tokenFromRow, tokenToRow } from './row.js';
export type { TokenColumn, TokenRow } from './row.js';
export { MemoryTokenStore } from './memory-store.js';
