import { type OAuthToken, type TokenStore, TokenStoreError, type TokenStoreOperation } from '@crm/core';
import {
  checkIdArgument,
  checkOptionNames,
  checkOptionsObject,
  checkSaveArgument,
  checkTokenArgument,
  copyStoredFields,
  driverErrorCode,
  fillAbsentFields,
  lookupKey,
  NETWORK_ERROR_CODES,
  operationTimeoutOption,
  tokenSecrets,
  withDeadline,
} from '@crm/core/store-kit';
import { newZohoToken, tokenFromZohoStored } from './convert.js';
import { defaultSdk, isNodeSdkStore, type ZohoSdk, type ZohoTokenStore } from './zoho-sdk.js';

export interface FromZohoOptions {
  /** The SDK whose token class the store expects (default: the TypeScript SDK). Required for Node.js SDK stores. */
  sdk?: ZohoSdk;
  /** The name errors carry in `store` (default: `Zoho` and the store's class name, e.g. `ZohoFileStore`). */
  name?: string;
  /** How long one call may take before it fails with BACKEND_UNAVAILABLE (default 5000 ms). */
  operationTimeoutMs?: number;
}

const KNOWN_OPTIONS = ['sdk', 'name', 'operationTimeoutMs'];

/** Zoho's stores signal an unknown id with this text (their `FileStore`; the bridge's own stores say it too). */
const UNKNOWN_ID = 'Given ID is invalid';

/** Zoho's documented table: how long each column is, for VALUE_TOO_LONG from a DBStore. */
const ZOHO_COLUMN_LIMITS: Record<string, number> = { id: 10, expiry_time: 20 };
const ZOHO_DEFAULT_COLUMN_LIMIT = 255;

/**
 * Zoho's own token store (the SDKs' `FileStore` or `DBStore`, or any store written for the SDKs) as our
 * `TokenStore`: tokens are converted both ways, their errors become `TokenStoreError`s whose message and
 * cause hold no token value, and every call has a deadline (their DBStore can leave a promise pending for
 * ever). Only the API is adapted: how their store finds, merges, numbers and writes tokens is theirs, with
 * its defects (docs/ZOHO-STORES.md in the repository lists them). Use it to read a Zoho store while you
 * move its tokens to one of ours, or to run `@crm/store-conformance` on it.
 */
export function fromZohoTokenStore(zohoStore: ZohoTokenStore, options: FromZohoOptions = {}): TokenStore {
  const openError = (message: string) => TokenStoreError.invalidArgument({ store: 'ZohoTokenStore', operation: 'open' }, message);
  checkOptionsObject(options, 'ZohoTokenStore');
  checkOptionNames(options, KNOWN_OPTIONS, 'ZohoTokenStore');
  for (const method of ['findToken', 'findTokenById', 'saveToken', 'deleteToken', 'getTokens', 'deleteTokens'] as const) {
    if (typeof zohoStore?.[method] !== 'function') throw openError(`the Zoho store has no ${method} method`);
  }
  if (options.sdk === undefined && isNodeSdkStore(zohoStore)) {
    // Its stores silently ignore tokens of another class: findToken returns them untouched, saveToken writes nothing.
    throw openError('a Node.js SDK store needs that SDK\'s classes: pass { sdk: await import("@zohocrm/nodejs-sdk-8.0") }');
  }
  if (options.name !== undefined && (typeof options.name !== 'string' || options.name === ''))
    throw openError('name must be a non-empty string');
  const store = options.name ?? `Zoho${zohoStore.constructor?.name ?? 'TokenStore'}`;
  const timeoutMs = operationTimeoutOption(options.operationTimeoutMs, store);
  const sdk = (options as FromZohoOptions).sdk ?? defaultSdk();
  if (typeof sdk?.OAuthToken !== 'function' || typeof sdk.UserSignature !== 'function') {
    throw openError('sdk must hold the OAuthToken and UserSignature classes');
  }
  return new ZohoStoreAdapter(zohoStore, sdk, store, timeoutMs);
}

class ZohoStoreAdapter implements TokenStore {
  private closed = false;

  constructor(
    private readonly zoho: ZohoTokenStore,
    private readonly sdk: ZohoSdk,
    private readonly store: string,
    private readonly timeoutMs: number,
  ) {}

  async findToken(token: OAuthToken): Promise<OAuthToken | null> {
    this.checkOpen('findToken');
    checkTokenArgument(token, this.store, 'findToken');
    const found = await this.call('findToken', tokenSecrets(token), () => this.zoho.findToken(newZohoToken(token, this.sdk)));
    if (found === null || found === undefined) return null;
    return fillAbsentFields(token, this.read(found, 'findToken'));
  }

  async saveToken(token: OAuthToken): Promise<void> {
    this.checkOpen('saveToken');
    checkSaveArgument(token, this.store);
    const theirs = newZohoToken(token, this.sdk);
    const secrets = tokenSecrets(token);
    await this.call('saveToken', secrets, () => this.zoho.saveToken(theirs));
    // Their DBStore does not write an updated row's id (or its other stored fields) back into the token:
    // read what was stored, as the contract's write-back asks.
    const saved = this.read(theirs, 'saveToken', false);
    const stored = await this.storedAfterSave(saved, secrets);
    copyStoredFields(token, stored ?? saved);
  }

  async findTokenById(id: string): Promise<OAuthToken | null> {
    this.checkOpen('findTokenById');
    checkIdArgument(id, this.store, 'findTokenById');
    const found = await this.call('findTokenById', [], () => this.zoho.findTokenById(id), null);
    return found === null || found === undefined ? null : this.read(found, 'findTokenById');
  }

  async deleteToken(id: string): Promise<void> {
    this.checkOpen('deleteToken');
    checkIdArgument(id, this.store, 'deleteToken');
    await this.call('deleteToken', [], () => this.zoho.deleteToken(id), null);
  }

  async getTokens(): Promise<OAuthToken[]> {
    this.checkOpen('getTokens');
    const tokens = await this.call('getTokens', [], () => this.zoho.getTokens());
    if (tokens === null || tokens === undefined) return []; // their DBStore's answer for an empty table
    if (!Array.isArray(tokens))
      throw TokenStoreError.corrupt({ store: this.store, operation: 'getTokens' }, 'the Zoho store returned no list');
    return tokens.map((token) => this.read(token, 'getTokens'));
  }

  async deleteTokens(): Promise<void> {
    this.checkOpen('deleteTokens');
    await this.call('deleteTokens', [], async () => this.zoho.deleteTokens());
  }

  /** Zoho's stores open what they need per call: nothing to release. Later calls reject with STORE_CLOSED. */
  async close(): Promise<void> {
    this.closed = true;
  }

  private checkOpen(operation: TokenStoreOperation): void {
    if (this.closed) throw TokenStoreError.closed({ store: this.store, operation });
  }

  private read(token: unknown, operation: TokenStoreOperation, needsId = true): OAuthToken {
    return tokenFromZohoStored(token, this.store, operation, needsId);
  }

  /**
   * The stored token after a save: found by the find rules (their DBStore updates the row the rules match
   * but leaves the caller's id in the token), else by the id the save wrote back.
   */
  private async storedAfterSave(saved: OAuthToken, secrets: string[]): Promise<OAuthToken | null> {
    let found: unknown;
    if (lookupKey(saved) !== null) {
      const probe = saved.clone();
      probe.id = null;
      found = await this.call('saveToken', secrets, () => this.zoho.findToken(newZohoToken(probe, this.sdk)));
    } else if (saved.id !== null) {
      const id = saved.id;
      found = await this.call('saveToken', secrets, () => this.zoho.findTokenById(id), null);
    }
    return found === null || found === undefined ? null : this.read(found, 'saveToken');
  }

  /**
   * Runs one call of their store against the deadline and turns what it throws into a TokenStoreError.
   * `unknownId` is what the call means when their store says the id is unknown (their FileStore throws).
   */
  private async call<T>(operation: TokenStoreOperation, secrets: string[], work: () => Promise<T> | T, unknownId?: T): Promise<T> {
    const deadline = { timeoutMs: this.timeoutMs, store: this.store, operation, backend: 'the Zoho store' };
    try {
      return await withDeadline(deadline, async () => work());
    } catch (error) {
      if (unknownId !== undefined && isUnknownIdError(error)) return unknownId;
      // The deadline's own error, or one of our stores behind toZohoTokenStore: already safe, code kept.
      if (TokenStoreError.is(error)) throw error;
      throw this.translate(error, operation, secrets);
    }
  }

  private translate(error: unknown, operation: TokenStoreOperation, secrets: string[]): TokenStoreError {
    const details = { store: this.store, operation, cause: error, secrets };
    const code = driverErrorCode(rootCause(error));
    if (code === 'ER_DATA_TOO_LONG') {
      const column = /column '([a-z_]+)'/.exec(String((rootCause(error) as Error).message))?.[1] ?? 'unknown';
      return TokenStoreError.valueTooLong(details, column, ZOHO_COLUMN_LIMITS[column] ?? ZOHO_DEFAULT_COLUMN_LIMIT);
    }
    if (NETWORK_ERROR_CODES.has(code)) return TokenStoreError.unavailable(details, 'the Zoho store could not reach its storage');
    return TokenStoreError.failure(details, 'the Zoho store failed');
  }
}

/** The innermost cause: their SDKException wraps the driver's error. */
function rootCause(error: unknown): unknown {
  let current = error;
  for (
    let depth = 0;
    depth < 5 && typeof current === 'object' && current !== null && (current as { cause?: unknown }).cause != null;
    depth++
  ) {
    current = (current as { cause?: unknown }).cause;
  }
  return current;
}

function isUnknownIdError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && String((error as { message?: unknown }).message).includes(UNKNOWN_ID);
}
