import { TokenStoreError, type TokenStoreOperation } from './errors.js';
import {
  checkIdArgument,
  checkSaveArgument,
  checkTokenArgument,
  copyStoredFields,
  fillAbsentFields,
  type LookupKey,
  lookupKey,
  matchesLookupKey,
  planSave,
} from './match.js';
import type { TokenStore } from './store.js';
import type { OAuthToken } from './token.js';

const STORE = 'MemoryTokenStore';

/**
 * The reference store: tokens in a Map, for examples, tests and the conformance suite's baseline.
 * Every method runs to completion without awaiting in between, so calls never interleave.
 */
export class MemoryTokenStore implements TokenStore {
  /** Stored copies by id; callers never hold these objects. */
  private readonly tokensById = new Map<string, OAuthToken>();
  private closed = false;

  private checkOpen(operation: TokenStoreOperation): void {
    if (this.closed) throw TokenStoreError.closed({ store: STORE, operation });
  }

  private findByKey(key: LookupKey): OAuthToken | null {
    for (const stored of this.tokensById.values()) if (matchesLookupKey(stored, key)) return stored;
    return null;
  }

  async findToken(token: OAuthToken): Promise<OAuthToken | null> {
    this.checkOpen('findToken');
    checkTokenArgument(token, STORE, 'findToken');
    const key = lookupKey(token);
    const stored = key === null ? null : this.findByKey(key);
    return stored === null ? null : fillAbsentFields(token, stored);
  }

  async saveToken(token: OAuthToken): Promise<void> {
    this.checkOpen('saveToken');
    checkSaveArgument(token, STORE);
    const plan = planSave({ findById: (id) => this.tokensById.get(id) ?? null, findByKey: (key) => this.findByKey(key) }, token, STORE);
    this.tokensById.set(plan.stored.id as string, plan.stored);
    copyStoredFields(token, plan.stored);
  }

  async deleteToken(id: string): Promise<void> {
    this.checkOpen('deleteToken');
    checkIdArgument(id, STORE, 'deleteToken');
    this.tokensById.delete(id);
  }

  async getTokens(): Promise<OAuthToken[]> {
    this.checkOpen('getTokens');
    return [...this.tokensById.values()].map((stored) => stored.clone());
  }

  async deleteTokens(): Promise<void> {
    this.checkOpen('deleteTokens');
    this.tokensById.clear();
  }

  async findTokenById(id: string): Promise<OAuthToken | null> {
    this.checkOpen('findTokenById');
    checkIdArgument(id, STORE, 'findTokenById');
    return this.tokensById.get(id)?.clone() ?? null;
  }

  /** After close, every call rejects with STORE_CLOSED; closing again is fine. */
  async close(): Promise<void> {
    this.closed = true;
  }
}
