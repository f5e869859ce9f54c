import { startAccountsEmulator } from '@crm/accounts-emulator';
import { type HeldLock, type LockingTokenStore, OAuthToken, supportsLocking, type TokenStore, UserSignature } from '@crm/core';
import { skipReasons } from '../skips.js';
import { startWorker, type Worker } from '../spawn-worker.js';
import type { CaseContext } from '../types.js';
import {
  type CounterLoopResult,
  counterToken,
  type HoldLockResult,
  type ManagerCallersResult,
  preciseNow,
  sha256,
  tokenManagerClass,
  type WorkerJob,
} from '../worker-jobs.js';
import { assert, expectStoreError, Failures, group } from './support.js';

/** Short leases keep the group fast; the kit's minimum is 1000 ms. */
const LEASE_MS = 1000;
const DEAD_HOLDER_LEASE_MS = 1500;
/** How much later than its lease a dead or frozen holder's lock may come free (polling, a busy machine). */
const MARGIN_MS = 3000;
const COUNTER_WORKERS = 4;
const COUNTER_ROUNDS = 8;
const COUNTER_LEASE_MS = 15_000;
const MANAGER_WORKERS = 4;
const MANAGER_CALLERS = 25;
/** Clock differences between processes of one machine, below which two intervals do not count as overlapping. */
const CLOCK_TOLERANCE_MS = 1;

/** The store of the case with its lock, or a skip when it has none (the capability is optional). */
function locking(context: CaseContext): LockingTokenStore {
  if (!supportsLocking(context.store)) context.skip('the store has no withLock');
  return context.store;
}

/** Another store over the same storage in this process: `reopen`, else `share`/`openShared`, else the case's store itself. */
async function sameStorage(context: CaseContext): Promise<LockingTokenStore> {
  const { options } = context;
  let other: TokenStore = context.store;
  if (context.canReopen) other = await context.reopen();
  else if (options.share && options.openShared && options.sharedAcrossProcesses !== false) other = await context.openShared();
  assert.ok(supportsLocking(other), 'a second store over the same storage must have withLock too');
  return other;
}

/** Skips the case when worker processes cannot run (the `processes` group is switched off). */
function needProcesses(context: CaseContext): void {
  const reason = skipReasons(context.options).processes;
  if (reason !== undefined) context.skip(`needs worker processes, as the processes group does, which is switched off: ${reason}`);
}

/** Starts one worker per job over this case's storage, waits until all opened their stores, then lets them go. */
async function startAll(context: CaseContext, jobs: WorkerJob[]): Promise<Worker[]> {
  const description = JSON.parse(JSON.stringify(await context.share())) as unknown;
  const workers = jobs.map((job) => startWorker(context.options.module as string, description, job, context.signal));
  await Promise.all(workers.map((worker) => worker.ready));
  for (const worker of workers) worker.send({ type: 'go' });
  return workers;
}

/** A promise and the function that resolves it. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open: () => void = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** True when `promise` settles within `ms`, false otherwise; the timer never outlives the race. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const settled = promise.then(
    () => true,
    () => true,
  );
  try {
    return await Promise.race([settled, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `work` under the lock on `key` and records when it held it. */
function recordInterval(store: LockingTokenStore, key: string, intervals: Array<[number, number]>, holdMs: number): Promise<void> {
  return store.withLock(
    key,
    async () => {
      const start = preciseNow();
      await sleep(holdMs);
      intervals.push([start, preciseNow()]);
    },
    { leaseMs: LEASE_MS, waitMs: 20_000 },
  );
}

/** Pairs of intervals that overlap by more than the tolerance, described. */
function overlaps(intervals: Array<[number, number]>): string[] {
  const sorted = [...intervals].sort((a, b) => a[0] - b[0]);
  const found: string[] = [];
  for (let n = 1; n < sorted.length; n++) {
    const overlap = sorted[n - 1]![1] - sorted[n]![0];
    if (overlap > CLOCK_TOLERANCE_MS) found.push(`two holders at once for ${overlap.toFixed(1)} ms`);
  }
  return found;
}

export const lockingCases = group('locking', [
  {
    id: 'bad-arguments',
    title:
      'an empty key, a 513-character key, leaseMs 999, waitMs -1, an unknown option, work that is no function: INVALID_ARGUMENT, work never runs',
    async run(context) {
      const store = locking(context);
      let ran = 0;
      const work = async () => {
        ran++;
      };
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['an empty key', () => store.withLock('', work)],
        ['a key of 513 characters', () => store.withLock('k'.repeat(513), work)],
        ['a key that is not a string', () => store.withLock(42 as unknown as string, work)],
        ['leaseMs 999', () => store.withLock('k', work, { leaseMs: 999 })],
        ['waitMs -1', () => store.withLock('k', work, { waitMs: -1 })],
        ['an unknown option', () => store.withLock('k', work, { leaseMs: 1000, timeout: 5 } as never)],
        ['work that is not a function', () => store.withLock('k', 'work' as never)],
      ];
      const failures = new Failures();
      for (const [what, call] of calls) {
        await failures.check(what, () => expectStoreError(call, 'INVALID_ARGUMENT', `withLock with ${what}`));
      }
      await failures.check('the work', () => assert.equal(ran, 0, 'no refused withLock may run its work'));
      // Nothing was taken: the key is free at once.
      await failures.check('the key afterwards', () => store.withLock('k', work, { waitMs: 0 }));
      failures.assertNone('bad withLock arguments');
    },
  },
  {
    id: 'result-error-release',
    title: "the work's result and error pass through, and the lock is released afterwards (withLock with waitMs 0 gets it)",
    async run(context) {
      const store = locking(context);
      const other = await sameStorage(context);
      const key = context.unique('lock');
      const value = { answer: 42 };
      assert.equal(
        await store.withLock(key, async () => value, { leaseMs: LEASE_MS }),
        value,
        "withLock must resolve with the work's result",
      );
      assert.equal(await other.withLock(key, async () => 'again', { waitMs: 0 }), 'again', 'after a resolved work, the lock must be free');
      const failure = new RangeError('the work failed');
      let thrown: unknown;
      try {
        await store.withLock(
          key,
          async () => {
            throw failure;
          },
          { leaseMs: LEASE_MS },
        );
      } catch (error) {
        thrown = error;
      }
      assert.ok(thrown === failure, "withLock must reject with the work's own error, unchanged");
      assert.equal(await other.withLock(key, async () => 'after', { waitMs: 0 }), 'after', 'after a failed work, the lock must be free');
    },
  },
  {
    id: 'mutual-exclusion',
    title: 'one holder per key at a time, through one store and through two stores over the same storage',
    async run(context) {
      const store = locking(context);
      const other = await sameStorage(context);
      const key = context.unique('lock');
      const intervals: Array<[number, number]> = [];
      await Promise.all([
        ...Array.from({ length: 3 }, () => recordInterval(store, key, intervals, 40)),
        ...Array.from({ length: 3 }, () => recordInterval(other, key, intervals, 40)),
      ]);
      assert.equal(intervals.length, 6, 'every withLock must have run its work');
      const found = overlaps(intervals);
      assert.ok(found.length === 0, `the work of withLock on one key overlapped: ${found.join('; ')}`);
    },
  },
  {
    id: 'independent-keys-and-storages',
    title:
      'while a key is held, other keys (also long ones sharing a 511-character prefix, and glob or LIKE patterns) and the same key of another storage are free',
    async run(context) {
      const store = locking(context);
      const other = await sameStorage(context);
      const sibling = await context.createSibling();
      const prefix = 'k'.repeat(511);
      const keys: Array<[string, string]> = [
        [`${prefix}a`, `${prefix}b`],
        ['*', 'a'],
        ['a?', 'ab'],
        ['[ab]', 'a'],
        ['%', 'x'],
        ['a_', 'ab'],
        ["a'; DROP TABLE x; --", 'a'],
        ['é', 'e\u0301'],
        ['a\uD800', 'a\uDBFF'], // lone surrogates: UTF-8 would turn both into U+FFFD
      ];
      const failures = new Failures();
      for (const [held, free] of keys) {
        const release = gate();
        const holding = gate();
        const holder = store.withLock(
          held,
          async () => {
            holding.open();
            await release.opened;
          },
          { leaseMs: LEASE_MS, waitMs: 5000 },
        );
        await holding.opened;
        const describe = `a key of ${free.length} characters next to a held one of ${held.length}`;
        await failures.check(`${describe}, same store`, () => store.withLock(free, async () => {}, { waitMs: 0 }));
        await failures.check(`${describe}, another store on the same storage`, () => other.withLock(free, async () => {}, { waitMs: 0 }));
        await failures.check(`${describe}: the held key is held`, () =>
          expectStoreError(() => other.withLock(held, async () => {}, { waitMs: 0 }), 'LOCK_TIMEOUT', 'the held key, waitMs 0'),
        );
        if (supportsLocking(sibling)) {
          await failures.check(`the same key of ${held.length} characters on another storage`, () =>
            sibling.withLock(held, async () => {}, { waitMs: 0 }),
          );
        }
        release.open();
        await holder;
      }
      failures.assertNone('independent locks');
    },
  },
  {
    id: 'lock-timeout',
    title: 'withLock with waitMs while another holds the key rejects with LOCK_TIMEOUT after waiting, and its work never ran',
    async run(context) {
      const store = locking(context);
      const other = await sameStorage(context);
      const key = context.unique('lock');
      const release = gate();
      const holding = gate();
      const holder = store.withLock(
        key,
        async () => {
          holding.open();
          await release.opened;
        },
        { leaseMs: LEASE_MS },
      );
      await holding.opened;
      let ran = false;
      const work = async () => {
        ran = true;
      };
      try {
        const started = Date.now();
        await expectStoreError(() => other.withLock(key, work, { waitMs: 300 }), 'LOCK_TIMEOUT', 'withLock waitMs 300 on a held key');
        assert.ok(Date.now() - started >= 290, 'LOCK_TIMEOUT must come only after waitMs');
        await expectStoreError(() => other.withLock(key, work, { waitMs: 0 }), 'LOCK_TIMEOUT', 'withLock waitMs 0 on a held key');
        await expectStoreError(
          () => store.withLock(key, work, { waitMs: 0 }),
          'LOCK_TIMEOUT',
          'withLock waitMs 0 on a held key, same store',
        );
        assert.equal(ran, false, 'the work of a withLock that timed out must never run');
      } finally {
        release.open();
        await holder;
      }
      assert.equal(await other.withLock(key, async () => 'free', { waitMs: 2000 }), 'free', 'once released, the key must be free');
    },
  },
  {
    id: 'closed',
    title: 'close() while a lock is held resolves (no hang); withLock after close() rejects with STORE_CLOSED and runs nothing',
    async run(context) {
      const store = locking(context);
      const close = store.close?.bind(store);
      if (close === undefined) return context.skip('the store has no close()');
      const key = context.unique('lock');
      const release = gate();
      const holding = gate();
      const holder = store
        .withLock(
          key,
          async () => {
            holding.open();
            await release.opened;
          },
          { leaseMs: LEASE_MS, waitMs: 5000 },
        )
        .then(
          () => 'resolved',
          (error: unknown) => error,
        );
      await holding.opened;
      const closing = Promise.resolve(close());
      const closed = await settlesWithin(closing, 5000);
      release.open();
      assert.ok(closed, 'close() must resolve while a lock is held, without waiting for the work');
      await closing;
      const outcome = await holder;
      assert.ok(
        outcome === 'resolved' || (outcome instanceof Error && outcome.name === 'TokenStoreError'),
        'a withLock in progress during close() must settle with its result or a TokenStoreError',
      );
      let ran = false;
      await expectStoreError(
        () =>
          store.withLock(key, async () => {
            ran = true;
          }),
        'STORE_CLOSED',
        'withLock after close()',
      );
      await expectStoreError(() => store.withLock('', async () => {}), 'STORE_CLOSED', "withLock('') after close()");
      assert.equal(ran, false, 'withLock after close() must not run its work');
    },
  },
  {
    id: 'processes-counter',
    title: `${COUNTER_WORKERS} processes × ${COUNTER_ROUNDS} read-pause-write rounds of a counter under one lock: the count is exact, no two holders overlap`,
    async run(context) {
      locking(context);
      needProcesses(context);
      const name = context.unique('counter');
      const key = `counter ${name}`;
      await context.store.saveToken(counterToken(name, 0));
      const jobs: WorkerJob[] = Array.from({ length: COUNTER_WORKERS }, () => ({
        kind: 'counter-loop',
        key,
        name,
        rounds: COUNTER_ROUNDS,
        // The contract's rule for real use: a lease longer than the store's operation timeout (5 s by default),
        // so that the save after confirm() ends inside it even on a loaded machine. This case tests exclusion,
        // not expiry (the dead and frozen holder cases do that, with short leases).
        leaseMs: COUNTER_LEASE_MS,
        pauseMs: 10,
      }));
      const workers = await startAll(context, jobs);
      const results = (await Promise.all(workers.map((worker) => worker.result))) as CounterLoopResult[];
      await Promise.all(workers.map((worker) => worker.exited));
      const intervals = results.flatMap((result) => result.intervals);
      const stored = await context.store.findToken(new OAuthToken({ userSignature: new UserSignature(name) }));
      const problems: string[] = [];
      if (stored?.expiryTime !== COUNTER_WORKERS * COUNTER_ROUNDS) {
        problems.push(`the counter is ${stored?.expiryTime ?? 'missing'}, expected ${COUNTER_WORKERS * COUNTER_ROUNDS}`);
      }
      if (intervals.length !== COUNTER_WORKERS * COUNTER_ROUNDS) problems.push(`${intervals.length} rounds recorded`);
      problems.push(...overlaps(intervals).slice(0, 5));
      assert.ok(problems.length === 0, `a lock shared by ${COUNTER_WORKERS} processes: ${problems.join('; ')}`);
    },
  },
  {
    id: 'processes-renewal',
    title: `a holder in another process renews its ${LEASE_MS} ms lease while it works 3500 ms: withLock here with waitMs 2000 times out`,
    async run(context) {
      const store = locking(context);
      needProcesses(context);
      const key = context.unique('lock');
      const [holder] = await startAll(context, [{ kind: 'hold-lock', key, leaseMs: LEASE_MS, waitMs: 5000, holdMs: 3500 }]);
      await holder!.progress();
      await expectStoreError(
        () => store.withLock(key, async () => {}, { leaseMs: LEASE_MS, waitMs: 2000 }),
        'LOCK_TIMEOUT',
        `withLock waitMs 2000 while another process holds the key and renews its ${LEASE_MS} ms lease`,
      );
      const held = (await holder!.result) as HoldLockResult;
      assert.equal(held.lost, null, 'the holder must not lose a lease it keeps renewing');
      assert.equal(held.confirmed, 'resolved', "the holder's confirm() after 3500 ms must resolve");
      await holder!.exited;
      await store.withLock(key, async () => {}, { waitMs: 2000 });
    },
  },
  {
    id: 'processes-dead-holder',
    title: `a holder killed with SIGKILL: its ${DEAD_HOLDER_LEASE_MS} ms lease ends, and withLock here gets the key within the lease and a margin`,
    async run(context) {
      const store = locking(context);
      needProcesses(context);
      const key = context.unique('lock');
      const [holder] = await startAll(context, [{ kind: 'hold-lock', key, leaseMs: DEAD_HOLDER_LEASE_MS, waitMs: 5000, holdMs: null }]);
      await holder!.progress();
      await expectStoreError(
        () => store.withLock(key, async () => {}, { waitMs: 0 }),
        'LOCK_TIMEOUT',
        'withLock waitMs 0 while the other process is alive and holds the key',
      );
      const killedAt = Date.now();
      holder!.signal('SIGKILL');
      await holder!.exited;
      const acquiredAt = await store.withLock(key, async () => Date.now(), {
        leaseMs: LEASE_MS,
        waitMs: DEAD_HOLDER_LEASE_MS + MARGIN_MS,
      });
      assert.ok(acquiredAt >= killedAt, 'the key must not come free before its holder died');
    },
  },
  {
    id: 'processes-frozen-holder',
    title:
      'a holder frozen (SIGSTOP) past its lease loses the key; once woken (SIGCONT) its signal aborts with LOCK_LOST, confirm() rejects LOCK_LOST, and its release leaves the new holder the key',
    async run(context) {
      const store = locking(context);
      needProcesses(context);
      const third = await sameStorage(context);
      const key = context.unique('lock');
      const [holder] = await startAll(context, [{ kind: 'hold-lock', key, leaseMs: LEASE_MS, waitMs: 5000, holdMs: null }]);
      await holder!.progress();
      holder!.signal('SIGSTOP');
      let woken = false;
      try {
        await store.withLock(
          key,
          async (lock: HeldLock) => {
            holder!.signal('SIGCONT');
            woken = true;
            // A holder that never learns it lost the lease would hold on for ever: tell it to stop after a while.
            const leftByItself = await settlesWithin(holder!.result, LEASE_MS + MARGIN_MS);
            if (!leftByItself) holder!.send({ type: 'stop' });
            const held = (await holder!.result) as HoldLockResult;
            await holder!.exited; // its withLock released (or tried to) before it reported; it has closed its store
            assert.equal(held.lost, 'LOCK_LOST', "the woken holder's signal must abort with LOCK_LOST once its renewal fails");
            assert.equal(held.confirmed, 'LOCK_LOST', "the woken holder's confirm() must reject with LOCK_LOST");
            assert.ok(!lock.signal.aborted, "the new holder's signal must not abort when the old holder releases");
            await lock.confirm(); // still the owner
            await expectStoreError(
              () => third.withLock(key, async () => {}, { waitMs: 300 }),
              'LOCK_TIMEOUT',
              "after the old holder's release, the new holder must still hold the key",
            );
          },
          { leaseMs: LEASE_MS, waitMs: LEASE_MS + MARGIN_MS },
        );
      } finally {
        if (!woken) holder!.signal('SIGCONT');
      }
      await third.withLock(key, async () => {}, { waitMs: 2000 });
    },
  },
  {
    id: 'processes-one-refresh',
    title: `${MANAGER_WORKERS} processes × ${MANAGER_CALLERS} concurrent getAccessToken of one stale token through TokenManager: one refresh at the accounts server, every caller gets the new access token`,
    async run(context) {
      locking(context);
      needProcesses(context);
      const TokenManager = tokenManagerClass();
      if (!TokenManager) return context.skip('this @crm/core has no TokenManager');
      const emulator = await startAccountsEmulator();
      try {
        const redirectUrl = 'https://app.example.com/oauth/callback';
        const { clientId, clientSecret } = emulator.registerClient({ redirectUri: redirectUrl });
        const name = `${context.unique('ana')}@zylker.com`;
        const userSignature = new UserSignature(name);
        const grantToken = emulator.issueGrantCode({ clientId, userEmail: name });
        await context.store.saveToken(new OAuthToken({ userSignature, clientId, clientSecret, redirectUrl, grantToken }));
        const first = await new TokenManager({ store: context.store, accountsUrl: emulator.url }).getAccessToken(name);
        assert.equal(emulator.counts().codeExchanges, 1, 'the first getAccessToken must exchange the grant code');
        const stale = await context.store.findToken(new OAuthToken({ userSignature }));
        assert.ok(stale?.accessToken && stale.refreshToken, 'the exchanged token must be stored with access and refresh tokens');
        stale.expiryTime = Date.now() - 60_000;
        await context.store.saveToken(stale);

        const jobs: WorkerJob[] = Array.from({ length: MANAGER_WORKERS }, () => ({
          kind: 'manager-callers',
          name,
          callers: MANAGER_CALLERS,
          accountsUrl: emulator.url,
        }));
        const workers = await startAll(context, jobs);
        const results = (await Promise.all(workers.map((worker) => worker.result))) as ManagerCallersResult[];
        await Promise.all(workers.map((worker) => worker.exited));

        const problems: string[] = [];
        const errors = results.flatMap((result) => result.errors);
        if (errors.length > 0) problems.push(`${errors.length} calls failed (${[...new Set(errors)].join(', ')})`);
        const refreshes = emulator.counts().refreshes;
        if (refreshes !== 1) problems.push(`the accounts server saw ${refreshes} refreshes, expected 1`);
        const hashes = new Set(results.flatMap((result) => result.accessTokenHashes));
        if (hashes.size !== 1) problems.push(`the callers got ${hashes.size} different access tokens`);
        const stored = await context.store.findToken(new OAuthToken({ userSignature }));
        const storedAccess = stored?.accessToken ?? '';
        if (storedAccess === first) problems.push('the stored access token is still the stale one');
        if (!hashes.has(sha256(storedAccess))) problems.push('the callers did not get the stored access token');
        const response = await fetch(`${emulator.url}/crm/v8/users?type=CurrentUser`, {
          headers: { Authorization: `Zoho-oauthtoken ${storedAccess}` },
        });
        await response.arrayBuffer();
        if (response.status !== 200) problems.push(`the stored access token is refused by the API (HTTP ${response.status})`);
        assert.ok(
          problems.length === 0,
          `one stale token, ${MANAGER_WORKERS * MANAGER_CALLERS} callers in ${MANAGER_WORKERS} processes: ${problems.join('; ')}`,
        );
      } finally {
        await emulator.close();
      }
    },
  },
]);
