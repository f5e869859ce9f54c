import { TokenStoreError, type TokenStoreOperation } from './errors.js';
import { type HeldLock, type Lease, type LockOptions, newLockOwner, runWithLease, type TokenLocking } from './lock.js';
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
 * It offers the lock capability: its storage is this object, so its locks are shared by every caller that
 * holds it (one process); leases expire like any store's.
 */
export class MemoryTokenStore implements TokenStore, TokenLocking {
  /** Stored copies by id; callers never hold these objects. */
  private readonly tokensById = new Map<string, OAuthToken>();
  /** Held locks by key: the owner token and when the lease ends (epoch ms). */
  private readonly locks = new Map<string, { owner: string; expiresAt: number }>();
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

  /**
   * Runs `work` while holding the lock on `key` (see `TokenLocking`). The lease is checked against the clock,
   * so a holder that stops renewing loses it after `leaseMs`, as with a server's lock.
   */
  async withLock<T>(key: string, work: (lock: HeldLock) => Promise<T>, options?: LockOptions): Promise<T> {
    this.checkOpen('withLock');
    return runWithLease(STORE, key, work, options, async (lockKey, leaseMs) => this.tryAcquire(lockKey, leaseMs));
  }

  /** One try: the lease when nobody (or an expired holder) has the key, else null. */
  private tryAcquire(key: string, leaseMs: number): Lease | null {
    this.checkOpen('withLock');
    const held = this.locks.get(key);
    if (held !== undefined && held.expiresAt > Date.now()) return null;
    const owner = newLockOwner();
    this.locks.set(key, { owner, expiresAt: Date.now() + leaseMs });
    const locks = this.locks;
    return {
      // Compare-and-expire: only a live lease of this owner is extended.
      async renew(nextLeaseMs: number): Promise<boolean> {
        const current = locks.get(key);
        if (current === undefined || current.owner !== owner || current.expiresAt <= Date.now()) return false;
        current.expiresAt = Date.now() + nextLeaseMs;
        return true;
      },
      // Compare-and-delete: never frees another owner's lock. Works after close(): release is best effort.
      async release(): Promise<void> {
        if (locks.get(key)?.owner === owner) locks.delete(key);
      },
    };
  }

  /** After close, every call rejects with STORE_CLOSED; closing again is fine. */
  async close(): Promise<void> {
    this.closed = true;
  }
}
