import { randomBytes } from 'node:crypto';
import { TokenStoreError, type TokenStoreErrorDetails } from './errors.js';
import { MAX_TIMER_MS } from './options.js';
import type { TokenStore } from './store.js';

/** How `withLock` waits and how long a lease lasts. */
export interface LockOptions {
  /**
   * How long the lease lasts without renewal, in milliseconds (default 30000, at least 1000). While the work
   * runs the holder renews it every third of that; a holder that dies stops renewing, and its lease ends.
   * Make it longer than the store's `operationTimeoutMs`: a write started right after `confirm()` must end
   * inside the lease.
   */
  leaseMs?: number;
  /** How long to wait for another holder to let go before LOCK_TIMEOUT, in milliseconds (default 30000; 0 tries once). */
  waitMs?: number;
}

/** What the work of `withLock` gets while it holds the lock. */
export interface HeldLock {
  /** The key given to `withLock`. */
  readonly key: string;
  /**
   * Aborted, with a LOCK_LOST TokenStoreError as its reason, as soon as the holder learns it lost the lease
   * (a renewal found another owner or none, or the backend ended the session that held it).
   */
  readonly signal: AbortSignal;
  /**
   * Checks with the backend that this holder still owns the lock, and renews the lease to a full `leaseMs`.
   * Rejects with LOCK_LOST when it does not own it. Call it right before a write that must happen under the
   * lock: the write then has a whole lease to finish in.
   */
  confirm(): Promise<void>;
}

/**
 * The optional lock capability of a store: a mutual-exclusion lease shared by every process that opens the
 * same storage. `docs/CONTRACT.md` ("Locking") states the rules and the conformance suite's `locking` group
 * checks them:
 * - one holder per key at a time, across processes; different keys never wait for each other;
 * - the lease carries an owner token: renewal and release are compare-and-expire and compare-and-delete, so a
 *   holder whose lease ran out can neither extend nor free the next holder's lock;
 * - a dead holder's lock ends when its lease does (or at once, when the backend sees its session end);
 * - `withLock` always releases before it settles, whether the work resolved or threw, and passes the work's
 *   result or error through; a failed release is not reported (the lease ends by itself).
 */
export interface TokenLocking {
  /**
   * Waits for the lock on `key` (any non-empty string of at most 512 characters), runs `work` while holding
   * it, releases it. Rejects with LOCK_TIMEOUT when `waitMs` passes first (then `work` never ran), with
   * INVALID_ARGUMENT for a bad key or options, with STORE_CLOSED after `close()`.
   */
  withLock<T>(key: string, work: (lock: HeldLock) => Promise<T>, options?: LockOptions): Promise<T>;
}

export type LockingTokenStore = TokenStore & TokenLocking;

/** True when the store offers the lock capability. */
export function supportsLocking(store: TokenStore): store is LockingTokenStore {
  return typeof (store as Partial<TokenLocking>).withLock === 'function';
}

// ---------------------------------------------------------------------------------------------------------
// For store authors (exported from `@crm/core/store-kit`): the waiting, renewing and releasing every lock
// needs, around the three backend steps a store supplies.

export const DEFAULT_LEASE_MS = 30_000;
export const DEFAULT_LOCK_WAIT_MS = 30_000;
export const MIN_LEASE_MS = 1000;
export const MAX_LOCK_KEY_LENGTH = 512;

/** A lease a backend granted; its owner token lives inside it. */
export interface Lease {
  /** Extends the lease to `leaseMs` from now if this owner still holds it; false when it does not. */
  renew(leaseMs: number): Promise<boolean>;
  /** Ends the lease if this owner still holds it (compare-and-delete); never frees another owner's lock. */
  release(): Promise<void>;
}

/** The one step a store writes: try once to take the lock on `key`, with a new owner token. */
export type TryAcquire = (key: string, leaseMs: number) => Promise<Lease | null>;

/** A random owner token for a lease (128 bits, hex). */
export function newLockOwner(): string {
  return randomBytes(16).toString('hex');
}

/** Checks `withLock`'s arguments; INVALID_ARGUMENT for anything else. */
export function checkLockArguments(key: unknown, work: unknown, options: unknown, store: string): { leaseMs: number; waitMs: number } {
  const details = { store, operation: 'withLock' } as const;
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_LOCK_KEY_LENGTH) {
    throw TokenStoreError.invalidArgument(details, `the lock key must be a non-empty string of at most ${MAX_LOCK_KEY_LENGTH} characters`);
  }
  if (typeof work !== 'function') throw TokenStoreError.invalidArgument(details, 'withLock needs a function to run');
  if (options !== undefined && (typeof options !== 'object' || options === null || Array.isArray(options))) {
    throw TokenStoreError.invalidArgument(details, 'lock options must be an object');
  }
  const { leaseMs = DEFAULT_LEASE_MS, waitMs = DEFAULT_LOCK_WAIT_MS, ...rest } = (options ?? {}) as LockOptions;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) {
    throw TokenStoreError.invalidArgument(details, `unknown lock option ${unknown[0]!.slice(0, 80)}; the options are leaseMs, waitMs`);
  }
  if (!Number.isSafeInteger(leaseMs) || leaseMs < MIN_LEASE_MS || leaseMs > MAX_TIMER_MS) {
    throw TokenStoreError.invalidArgument(details, `leaseMs must be a whole number from ${MIN_LEASE_MS} to ${MAX_TIMER_MS}`);
  }
  if (!Number.isSafeInteger(waitMs) || waitMs < 0 || waitMs > MAX_TIMER_MS) {
    throw TokenStoreError.invalidArgument(details, `waitMs must be a whole number from 0 to ${MAX_TIMER_MS}`);
  }
  return { leaseMs, waitMs };
}

/**
 * `withLock` for a store that can try once to take a lease: checks the arguments, polls `tryAcquire` until it
 * gets the lease or `waitMs` passes (LOCK_TIMEOUT), renews the lease every third of `leaseMs` while `work`
 * runs, aborts the work's signal with LOCK_LOST when a renewal fails, and releases in every case.
 * `tryAcquire` throws TokenStoreErrors of its own (BACKEND_UNAVAILABLE...), which reach the caller as they are.
 */
export async function runWithLease<T>(
  store: string,
  key: string,
  work: (lock: HeldLock) => Promise<T>,
  options: LockOptions | undefined,
  tryAcquire: TryAcquire,
): Promise<T> {
  const { leaseMs, waitMs } = checkLockArguments(key, work, options, store);
  const details: TokenStoreErrorDetails = { store, operation: 'withLock' };
  const lease = await acquire(details, key, leaseMs, waitMs, tryAcquire);

  const controller = new AbortController();
  const lose = (cause?: unknown) => {
    if (!controller.signal.aborted) {
      controller.abort(TokenStoreError.lockLost(cause === undefined ? details : { ...details, cause }));
    }
  };
  // One renewal at a time: the watchdog's and confirm()'s share it.
  let renewing: Promise<void> | null = null;
  const renew = (): Promise<void> => {
    renewing ??= (async () => {
      try {
        if (controller.signal.aborted) return;
        if (!(await lease.renew(leaseMs))) lose();
      } catch (error) {
        lose(error); // a renewal nobody can confirm counts as lost: a holder must be sure before it writes
      } finally {
        renewing = null;
      }
    })();
    return renewing;
  };
  const watchdog = setInterval(() => void renew(), Math.max(Math.floor(leaseMs / 3), 1));
  watchdog.unref();

  const held: HeldLock = {
    key,
    signal: controller.signal,
    async confirm() {
      const pending = renewing as Promise<void> | null;
      if (pending) await pending; // a renewal already under way may have started before this call
      await renew();
      controller.signal.throwIfAborted();
    },
  };
  try {
    return await work(held);
  } finally {
    clearInterval(watchdog);
    const pending = renewing as Promise<void> | null; // set by the watchdog while work ran
    if (pending) await pending;
    try {
      await lease.release();
    } catch {
      // The lease ends by itself; the work's outcome is what the caller needs.
    }
    lose(); // a signal kept past withLock must not look like a lock still held
  }
}

async function acquire(
  details: TokenStoreErrorDetails,
  key: string,
  leaseMs: number,
  waitMs: number,
  tryAcquire: TryAcquire,
): Promise<Lease> {
  const giveUpAt = Date.now() + waitMs;
  for (let attempt = 0; ; attempt++) {
    const lease = await tryAcquire(key, leaseMs);
    if (lease) return lease;
    const left = giveUpAt - Date.now();
    if (left <= 0) throw TokenStoreError.lockTimeout(details, waitMs);
    // 5 ms, growing to 100 ms, with jitter so that waiters in many processes do not poll in step.
    const pause = Math.min(5 * 1.5 ** attempt, 100) * (0.5 + Math.random());
    await new Promise((resolve) => setTimeout(resolve, Math.min(pause, left)));
  }
}
