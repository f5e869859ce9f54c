/**
 * MemoryTokenStore's lock capability: in-process leases with owner tokens, on real timers.
 */
import { MemoryTokenStore, supportsLocking, TokenStoreError } from '../src/index';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Blocks the event loop, as a frozen process would: no timer (no lease renewal) runs meanwhile. */
function freeze(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // busy wait
  }
}

async function codeOf(promise: Promise<unknown>): Promise<string | null> {
  try {
    await promise;
    return null;
  } catch (error) {
    return TokenStoreError.is(error) ? error.code : `not a TokenStoreError: ${String(error)}`;
  }
}

let store: MemoryTokenStore;
beforeEach(() => {
  store = new MemoryTokenStore();
});
afterEach(async () => {
  await store.close();
});

it('declares the capability', () => {
  expect(supportsLocking(store)).toBe(true);
});

it('lets one holder at a time run, and passes results and errors through', async () => {
  let inside = 0;
  let most = 0;
  const order: number[] = [];
  const runs = Array.from({ length: 20 }, (_, index) =>
    store.withLock('refresh:one', async (lock) => {
      expect(lock.key).toBe('refresh:one');
      inside++;
      most = Math.max(most, inside);
      await sleep(2);
      order.push(index);
      inside--;
      if (index === 3) throw new Error('work failed');
      return index;
    }),
  );
  const settled = await Promise.allSettled(runs);
  expect(most).toBe(1);
  expect(order).toHaveLength(20);
  expect(settled[3]).toMatchObject({ status: 'rejected', reason: { message: 'work failed' } });
  expect(settled[5]).toEqual({ status: 'fulfilled', value: 5 });
  // Every lock was released, the failed work's too.
  expect(await store.withLock('refresh:one', async () => 'free', { waitMs: 0 })).toBe('free');
});

it('never makes different keys, or another store, wait', async () => {
  const other = new MemoryTokenStore();
  let release!: () => void;
  const held = store.withLock('a', () => new Promise<void>((resolve) => (release = resolve)));
  await sleep(5);
  expect(await store.withLock('b', async () => 'b', { waitMs: 0 })).toBe('b');
  expect(await other.withLock('a', async () => 'other store', { waitMs: 0 })).toBe('other store');
  release();
  await held;
  await other.close();
});

it('rejects with LOCK_TIMEOUT after waitMs, without running the work', async () => {
  let release!: () => void;
  const held = store.withLock('k', () => new Promise<void>((resolve) => (release = resolve)));
  await sleep(5);
  let ran = false;
  const started = Date.now();
  const waiting = store.withLock(
    'k',
    async () => {
      ran = true;
    },
    { waitMs: 60 },
  );
  const error = await waiting.catch((caught: unknown) => caught);
  expect(TokenStoreError.is(error) && [error.code, error.operation, error.store]).toEqual(['LOCK_TIMEOUT', 'withLock', 'MemoryTokenStore']);
  expect(Date.now() - started).toBeGreaterThanOrEqual(55);
  expect(ran).toBe(false);
  release();
  await held;
});

it('a frozen holder loses its lease: its confirm() reports LOCK_LOST and its release does not free the new holder', async () => {
  let secondHolder!: Promise<string>;
  let releaseSecond!: () => void;
  let confirmed: string | null = 'not called';
  let abortedWith: string | null = null;
  await store.withLock(
    'k',
    async (lock) => {
      freeze(1300); // longer than the lease, and no renewal can run meanwhile
      // The next caller finds the lease expired and takes the lock at once (the first try is synchronous).
      secondHolder = store.withLock('k', async () => {
        await new Promise<void>((resolve) => (releaseSecond = resolve));
        return 'second done';
      });
      confirmed = await codeOf(lock.confirm());
      abortedWith = TokenStoreError.is(lock.signal.reason) ? lock.signal.reason.code : null;
    },
    { leaseMs: 1000 },
  );
  expect(confirmed).toBe('LOCK_LOST');
  expect(abortedWith).toBe('LOCK_LOST');
  // The first holder's withLock has settled and released what it could: the second still holds the lock.
  expect(await codeOf(store.withLock('k', async () => undefined, { waitMs: 0 }))).toBe('LOCK_TIMEOUT');
  releaseSecond();
  expect(await secondHolder).toBe('second done');
  expect(await store.withLock('k', async () => 'third', { waitMs: 0 })).toBe('third');
});

it('a holder that keeps running keeps its lease past leaseMs (renewals)', async () => {
  const result = await store.withLock(
    'k',
    async (lock) => {
      await sleep(2300);
      expect(await codeOf(store.withLock('k', async () => undefined, { waitMs: 0 }))).toBe('LOCK_TIMEOUT');
      await lock.confirm();
      return lock.signal.aborted;
    },
    { leaseMs: 2000 },
  );
  expect(result).toBe(false);
});

it('refuses bad keys and options with INVALID_ARGUMENT', async () => {
  expect(await codeOf(store.withLock('', async () => undefined))).toBe('INVALID_ARGUMENT');
  expect(await codeOf(store.withLock('x'.repeat(513), async () => undefined))).toBe('INVALID_ARGUMENT');
  expect(await codeOf(store.withLock('k', async () => undefined, { leaseMs: 10 }))).toBe('INVALID_ARGUMENT');
  expect(await codeOf(store.withLock('k', async () => undefined, { waitMs: -1 }))).toBe('INVALID_ARGUMENT');
  expect(await codeOf(store.withLock('k', 'not a function' as never))).toBe('INVALID_ARGUMENT');
  // Keys are any string: no character is special.
  expect(await store.withLock('*?[]{}\\%_\'"; DROP', async () => 'ok', { waitMs: 0 })).toBe('ok');
});

it('after close(), withLock rejects STORE_CLOSED; close() while a lock is held does not hang', async () => {
  let release!: () => void;
  const held = store.withLock('k', () => new Promise<string>((resolve) => (release = () => resolve('held work done'))));
  await sleep(5);
  const waiter = store.withLock('k', async () => 'never', { waitMs: 5000 });
  await store.close();
  expect(await codeOf(store.withLock('other', async () => undefined))).toBe('STORE_CLOSED');
  // A waiter's next try finds the store closed.
  expect(await codeOf(waiter)).toBe('STORE_CLOSED');
  release();
  expect(await held).toBe('held work done');
});
