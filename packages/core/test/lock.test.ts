/**
 * The kit's lease runner (`runWithLease`) and its argument check, on a small in-process lease backend with
 * real timers: owner-checked renewal and release, as the contract asks of every store's backend.
 */
import { TokenStoreError } from '../src/index';
import { checkLockArguments, type Lease, MAX_LOCK_KEY_LENGTH, newLockOwner, runWithLease } from '../src/store-kit';

const STORE = 'LeaseTestStore';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Leases in a Map: one owner per key until its expiry; renew and release compare the owner. */
class LeaseTable {
  readonly leases = new Map<string, { owner: string; expiresAt: number }>();
  attempts = 0;
  renewals: number[] = [];
  releases = 0;
  /** When set, renew throws this instead of answering. */
  renewError: Error | null = null;
  /** When set, release throws this after doing nothing. */
  releaseError: Error | null = null;

  holder(key: string): string | null {
    const lease = this.leases.get(key);
    return lease && lease.expiresAt > Date.now() ? lease.owner : null;
  }

  /** Another owner takes `key` for `leaseMs`, whatever held it. */
  takeOver(key: string, leaseMs: number): string {
    const owner = newLockOwner();
    this.leases.set(key, { owner, expiresAt: Date.now() + leaseMs });
    return owner;
  }

  tryAcquire = async (key: string, leaseMs: number): Promise<Lease | null> => {
    this.attempts++;
    await Promise.resolve();
    if (this.holder(key) !== null) return null;
    const owner = this.takeOver(key, leaseMs);
    return {
      renew: async (renewMs) => {
        this.renewals.push(Date.now());
        await Promise.resolve();
        if (this.renewError) throw this.renewError;
        if (this.holder(key) !== owner) return false;
        this.leases.set(key, { owner, expiresAt: Date.now() + renewMs });
        return true;
      },
      release: async () => {
        this.releases++;
        await Promise.resolve();
        if (this.releaseError) throw this.releaseError;
        if (this.leases.get(key)?.owner === owner) this.leases.delete(key);
      },
    };
  };
}

/** Resolves with the signal's reason once it aborts. */
function aborted(signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(signal.reason);
    else signal.addEventListener('abort', () => resolve(signal.reason), { once: true });
  });
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    return TokenStoreError.is(error) ? error.code : `not a TokenStoreError: ${String(error)}`;
  }
}

describe('runWithLease: waiting', () => {
  test('polls until the holder lets go, then runs the work under a lease of its own', async () => {
    const table = new LeaseTable();
    const other = table.takeOver('k', 60_000);
    setTimeout(() => table.leases.delete('k'), 300);
    const started = Date.now();
    let ranAt = 0;
    let heldBy: string | null = null;
    const result = await runWithLease(
      STORE,
      'k',
      async () => {
        ranAt = Date.now();
        heldBy = table.holder('k');
        return 'done';
      },
      { leaseMs: 5000, waitMs: 5000 },
      table.tryAcquire,
    );
    expect(result).toBe('done');
    expect(ranAt - started).toBeGreaterThanOrEqual(290);
    expect(table.attempts).toBeGreaterThan(2);
    expect(heldBy).not.toBeNull();
    expect(heldBy).not.toBe(other);
    expect(table.holder('k')).toBeNull(); // released
  });

  test('LOCK_TIMEOUT after waitMs while another holds; the work never ran', async () => {
    const table = new LeaseTable();
    const other = table.takeOver('k', 60_000);
    let ran = false;
    const started = Date.now();
    const error = await runWithLease(
      STORE,
      'k',
      async () => {
        ran = true;
      },
      { leaseMs: 1000, waitMs: 250 },
      table.tryAcquire,
    ).catch((thrown: unknown) => thrown);
    expect(TokenStoreError.is(error)).toBe(true);
    expect(error).toMatchObject({ code: 'LOCK_TIMEOUT', store: STORE, operation: 'withLock' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(245);
    expect(ran).toBe(false);
    expect(table.holder('k')).toBe(other);
    expect(table.releases).toBe(0);
  });

  test('waitMs 0 tries exactly once', async () => {
    const table = new LeaseTable();
    table.takeOver('k', 60_000);
    expect(await codeOf(runWithLease(STORE, 'k', async () => {}, { waitMs: 0 }, table.tryAcquire))).toBe('LOCK_TIMEOUT');
    expect(table.attempts).toBe(1);
  });

  test('one holder per key at a time; different keys do not wait for each other', async () => {
    const table = new LeaseTable();
    const intervals: Array<[number, number]> = [];
    const hold = () =>
      runWithLease(
        STORE,
        'shared',
        async () => {
          const start = performance.now();
          await sleep(30);
          intervals.push([start, performance.now()]);
        },
        { leaseMs: 1000, waitMs: 10_000 },
        table.tryAcquire,
      );
    const otherKeyRan = runWithLease(STORE, 'other', async () => performance.now(), { leaseMs: 1000, waitMs: 0 }, table.tryAcquire);
    await Promise.all([hold(), hold(), hold(), hold(), otherKeyRan]);
    intervals.sort((a, b) => a[0] - b[0]);
    for (let n = 1; n < intervals.length; n++) expect(intervals[n]![0]).toBeGreaterThanOrEqual(intervals[n - 1]![1]);
  });

  test("tryAcquire's own TokenStoreError reaches the caller as it is, and the work never ran", async () => {
    const failure = TokenStoreError.unavailable({ store: STORE, operation: 'withLock' }, 'the server is down');
    let ran = false;
    const error = await runWithLease(
      STORE,
      'k',
      async () => {
        ran = true;
      },
      undefined,
      async () => {
        throw failure;
      },
    ).catch((thrown: unknown) => thrown);
    expect(error).toBe(failure);
    expect(ran).toBe(false);
  });
});

describe('runWithLease: holding', () => {
  test('renews every third of leaseMs while the work runs, and stops renewing when it ends', async () => {
    const table = new LeaseTable();
    const leaseMs = 1200;
    let acquiredAt = 0;
    let expiredWhileHeld = false;
    await runWithLease(
      STORE,
      'k',
      async () => {
        acquiredAt = Date.now();
        for (let n = 0; n < 15; n++) {
          await sleep(100);
          if (table.holder('k') === null) expiredWhileHeld = true;
        }
      },
      { leaseMs, waitMs: 0 },
      table.tryAcquire,
    );
    const renewals = table.renewals.length;
    // 1500 ms of work with a renewal every 400 ms: 3 when the timers are on time, fewer on a busy machine.
    expect(renewals).toBeGreaterThanOrEqual(2);
    expect(renewals).toBeLessThanOrEqual(3);
    expect(table.renewals[0]! - acquiredAt).toBeGreaterThanOrEqual(390);
    expect(expiredWhileHeld).toBe(false);
    await sleep(600);
    expect(table.renewals.length).toBe(renewals);
  });

  test('confirm() renews the lease to a full leaseMs and resolves while this holder owns it', async () => {
    const table = new LeaseTable();
    await runWithLease(
      STORE,
      'k',
      async (lock) => {
        expect(lock.key).toBe('k');
        expect(lock.signal.aborted).toBe(false);
        await sleep(200);
        const before = table.leases.get('k')!.expiresAt;
        await lock.confirm();
        expect(table.leases.get('k')!.expiresAt).toBeGreaterThanOrEqual(before + 150);
        expect(table.renewals.length).toBe(1);
      },
      { leaseMs: 3000, waitMs: 0 },
      table.tryAcquire,
    );
  });

  test('a renewal that finds another owner aborts the signal with LOCK_LOST; confirm() rejects LOCK_LOST; release leaves the new owner', async () => {
    const table = new LeaseTable();
    let newOwner = '';
    const outcome = await runWithLease(
      STORE,
      'k',
      async (lock) => {
        newOwner = table.takeOver('k', 60_000); // the lease ran out and another process took the key
        const reason = await aborted(lock.signal);
        const confirmed = await codeOf(lock.confirm());
        return { reason, confirmed };
      },
      { leaseMs: 1000, waitMs: 0 },
      table.tryAcquire,
    );
    expect(TokenStoreError.is(outcome.reason)).toBe(true);
    expect(outcome.reason).toMatchObject({ code: 'LOCK_LOST', store: STORE, operation: 'withLock' });
    expect(outcome.confirmed).toBe('LOCK_LOST');
    expect(table.releases).toBe(1);
    expect(table.holder('k')).toBe(newOwner);
  });

  test('confirm() itself reports LOCK_LOST when the lease is gone, before the watchdog notices', async () => {
    const table = new LeaseTable();
    const codes = await runWithLease(
      STORE,
      'k',
      async (lock) => {
        table.leases.delete('k'); // expired and swept: nobody holds it
        const first = await codeOf(lock.confirm());
        return { first, aborted: lock.signal.aborted, again: await codeOf(lock.confirm()) };
      },
      { leaseMs: 30_000, waitMs: 0 },
      table.tryAcquire,
    );
    expect(codes).toEqual({ first: 'LOCK_LOST', aborted: true, again: 'LOCK_LOST' });
  });

  test('a renewal that throws counts as lost: LOCK_LOST with a cause that holds no secret', async () => {
    const table = new LeaseTable();
    const secret = '1000.0123456789abcdef0123456789abcdef.fedcba9876543210fedcba9876543210';
    table.renewError = Object.assign(new Error(`connection reset while sending ${secret}`), { code: 'ECONNRESET', args: [secret] });
    const reason = await runWithLease(STORE, 'k', async (lock) => aborted(lock.signal), { leaseMs: 1000, waitMs: 0 }, table.tryAcquire);
    expect(reason).toMatchObject({ code: 'LOCK_LOST' });
    const cause = (reason as Error).cause as Error & { code?: string };
    expect(cause.code).toBe('ECONNRESET');
    expect(JSON.stringify(cause) + String(cause.message) + String((reason as Error).message)).not.toContain(secret);
  });

  test('the signal is aborted once withLock settled: a kept signal does not look like a lock still held', async () => {
    const table = new LeaseTable();
    const signal = await runWithLease(STORE, 'k', async (lock) => lock.signal, { waitMs: 0 }, table.tryAcquire);
    expect(signal.aborted).toBe(true);
  });
});

describe('runWithLease: releasing', () => {
  test("the work's result passes through and the lock is released", async () => {
    const table = new LeaseTable();
    const value = { answer: 42 };
    expect(await runWithLease(STORE, 'k', async () => value, { waitMs: 0 }, table.tryAcquire)).toBe(value);
    expect(table.releases).toBe(1);
    expect(table.holder('k')).toBeNull();
    expect(await codeOf(runWithLease(STORE, 'k', async () => {}, { waitMs: 0 }, table.tryAcquire))).toBe('resolved');
  });

  test("the work's error passes through, the very same object, and the lock is released", async () => {
    const table = new LeaseTable();
    const failure = new RangeError('the work failed');
    const error = await runWithLease(
      STORE,
      'k',
      async () => {
        throw failure;
      },
      { waitMs: 0 },
      table.tryAcquire,
    ).catch((thrown: unknown) => thrown);
    expect(error).toBe(failure);
    expect(table.releases).toBe(1);
    expect(table.holder('k')).toBeNull();
  });

  test('work that throws synchronously is released as well', async () => {
    const table = new LeaseTable();
    const failure = new Error('thrown before any await');
    const work = (() => {
      throw failure;
    }) as unknown as () => Promise<void>;
    await expect(runWithLease(STORE, 'k', work, { waitMs: 0 }, table.tryAcquire)).rejects.toBe(failure);
    expect(table.releases).toBe(1);
    expect(table.holder('k')).toBeNull();
  });

  test('a release that throws masks neither the result nor the error', async () => {
    const table = new LeaseTable();
    table.releaseError = new Error('release failed');
    expect(await runWithLease(STORE, 'k', async () => 'result', { waitMs: 0 }, table.tryAcquire)).toBe('result');
    const failure = new Error('the work failed');
    await expect(
      runWithLease(
        STORE,
        'k2',
        async () => {
          throw failure;
        },
        { waitMs: 0 },
        table.tryAcquire,
      ),
    ).rejects.toBe(failure);
    expect(table.releases).toBe(2);
  });

  test('release waits for a renewal already under way (never releases under a renewal)', async () => {
    const table = new LeaseTable();
    const events: string[] = [];
    const slowTable = {
      tryAcquire: async (key: string, leaseMs: number): Promise<Lease | null> => {
        const lease = await table.tryAcquire(key, leaseMs);
        if (!lease) return null;
        return {
          renew: async (renewMs) => {
            events.push('renew started');
            await sleep(300);
            events.push('renew ended');
            return lease.renew(renewMs);
          },
          release: async () => {
            events.push('release');
            await lease.release();
          },
        };
      },
    };
    await runWithLease(STORE, 'k', async () => sleep(400), { leaseMs: 1000, waitMs: 0 }, slowTable.tryAcquire);
    expect(events).toEqual(['renew started', 'renew ended', 'release']);
    expect(table.holder('k')).toBeNull();
  });
});

describe('lock arguments', () => {
  const work = async () => 'ran';

  test.each([
    ['an empty key', '', undefined],
    [`a key of ${MAX_LOCK_KEY_LENGTH + 1} characters`, 'k'.repeat(MAX_LOCK_KEY_LENGTH + 1), undefined],
    ['a key that is not a string', 42, undefined],
    ['options that are not an object', 'k', 'fast'],
    ['null options', 'k', null],
    ['array options', 'k', [1000]],
    ['an unknown option', 'k', { leaseMs: 1000, timeoutMs: 5 }],
    ['leaseMs 999', 'k', { leaseMs: 999 }],
    ['a fractional leaseMs', 'k', { leaseMs: 1500.5 }],
    ['a leaseMs beyond the longest timer', 'k', { leaseMs: 2 ** 31 }],
    ['leaseMs null', 'k', { leaseMs: null }],
    ['leaseMs as a string', 'k', { leaseMs: '2000' }],
    ['waitMs -1', 'k', { waitMs: -1 }],
    ['waitMs NaN', 'k', { waitMs: Number.NaN }],
    ['waitMs Infinity', 'k', { waitMs: Number.POSITIVE_INFINITY }],
  ])('%s is INVALID_ARGUMENT; nothing is tried and the work never runs', async (_what, key, options) => {
    const table = new LeaseTable();
    let ran = false;
    const error = await runWithLease(
      STORE,
      key as string,
      async () => {
        ran = true;
      },
      options as never,
      table.tryAcquire,
    ).catch((thrown: unknown) => thrown);
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', store: STORE, operation: 'withLock' });
    expect(ran).toBe(false);
    expect(table.attempts).toBe(0);
    expect(() => checkLockArguments(key, work, options, STORE)).toThrow(TokenStoreError);
  });

  test('work that is not a function is INVALID_ARGUMENT', async () => {
    const table = new LeaseTable();
    expect(await codeOf(runWithLease(STORE, 'k', 'work' as never, undefined, table.tryAcquire))).toBe('INVALID_ARGUMENT');
    expect(table.attempts).toBe(0);
  });

  test('defaults, the limits themselves, and a key of exactly 512 characters are accepted', () => {
    expect(checkLockArguments('k', work, undefined, STORE)).toEqual({ leaseMs: 30_000, waitMs: 30_000 });
    expect(checkLockArguments('k', work, {}, STORE)).toEqual({ leaseMs: 30_000, waitMs: 30_000 });
    expect(checkLockArguments('k', work, { leaseMs: 1000, waitMs: 0 }, STORE)).toEqual({ leaseMs: 1000, waitMs: 0 });
    expect(checkLockArguments('k', work, { leaseMs: undefined, waitMs: undefined }, STORE)).toEqual({ leaseMs: 30_000, waitMs: 30_000 });
    expect(checkLockArguments('k'.repeat(MAX_LOCK_KEY_LENGTH), work, undefined, STORE).leaseMs).toBe(30_000);
  });

  test('the messages never quote the key (a key may be a user name or a token id)', () => {
    const key = `ana@zylker.com ${'x'.repeat(MAX_LOCK_KEY_LENGTH)}`;
    let message = '';
    try {
      checkLockArguments(key, work, undefined, STORE);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/at most 512 characters/);
    expect(message).not.toContain('ana@zylker.com');
  });

  test('newLockOwner gives 128 random bits as hex, different each time', () => {
    const owners = new Set(Array.from({ length: 100 }, () => newLockOwner()));
    expect(owners.size).toBe(100);
    for (const owner of owners) expect(owner).toMatch(/^[0-9a-f]{32}$/);
  });
});
