/**
 * `@crm/core/store-kit`: what a store author builds on. Applications need none of it; they import the
 * token, the contract and the error from `@crm/core`. `docs/WRITING-A-STORE.md` walks through a store
 * built on these pieces.
 */

// Plumbing: deadlines, driver errors, options, retries.
export type { DeadlineOptions } from './deadline.js';
export { withDeadline } from './deadline.js';
export { driverErrorCode, driverErrorMessage, MIN_REDACTED_SECRET_LENGTH, redactText, safeCause } from './driver-errors.js';
export { NETWORK_ERROR_CODES } from './errors.js';
// The lock capability: a store supplies one try-to-acquire step, the kit waits, renews and releases.
export type { Lease, TryAcquire } from './lock.js';
export {
  checkLockArguments,
  DEFAULT_LEASE_MS,
  DEFAULT_LOCK_WAIT_MS,
  MAX_LOCK_KEY_LENGTH,
  MIN_LEASE_MS,
  newLockOwner,
  runWithLease,
} from './lock.js';
// The contract's rules: what findToken matches, how saves merge, what may be saved.
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
  tokenSecrets,
} from './match.js';
export {
  booleanOption,
  checkOptionNames,
  checkOptionsObject,
  DEFAULT_MAX_SAVE_ATTEMPTS,
  DEFAULT_OPERATION_TIMEOUT_MS,
  MAX_TIMER_MS,
  maxSaveAttemptsOption,
  nameOption,
  operationTimeoutOption,
  positiveIntegerOption,
  urlOption,
} from './options.js';
export type { RetryOptions } from './retry.js';
export { retrySave } from './retry.js';
// Zoho's columns, and the one pair of row mapping functions every store uses.
export type { TokenColumn, TokenRow } from './row.js';
export { parseExpiryTime, TOKEN_COLUMNS, tokenFromRow, tokenToRow, tokenToValues } from './row.js';
// A server's clock, for deadlines the server itself enforces.
export { clientNow, ServerClock } from './server-clock.js';
