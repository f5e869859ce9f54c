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

  private findByKey(key: LookupKey): OAuthToken | null {
    for (const stored of this.tokensById.values()) if (matchesLookupKey(stored, key)) return stored;
    return null;
  }

  async findToken(token: OAuthToken): Promise<OAuthToken | null> {
    checkTokenArgument(token, STORE, 'findToken');
    const key = lookupKey(token);
    const stored = key === null ? null : this.findByKey(key);
    return stored === null ? null : fillAbsentFields(token, stored);
  }

  async saveToken(token: OAuthToken): Promise<void> {
    checkSaveArgument(token, STORE);
    const plan = planSave({ findById: (id) => this.tokensById.get(id) ?? null, findByKey: (key) => this.findByKey(key) }, token, STORE);
    this.tokensById.set(plan.stored.id as string, plan.stored);
    copyStoredFields(token, plan.stored);
  }

  async deleteToken(id: string): Promise<void> {
    checkIdArgument(id, STORE, 'deleteToken');
    this.tokensById.delete(id);
  }

  async getTokens(): Promise<OAuthToken[]> {
    return [...this.tokensById.values()].map((stored) => stored.clone());
  }

  async deleteTokens(): Promise<void> {
    this.tokensById.clear();
  }

  async findTokenById(id: string): Promise<OAuthToken | null> {
    checkIdArgument(id, STORE, 'findTokenById');
    return this.tokensById.get(id)?.clone() ?? null;
  }

  async close(): Promise<void> {}
}
