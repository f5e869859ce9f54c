/** The locking group: when it runs, when it skips and why, and that it tells a sound lock from broken ones. */
import { join } from 'node:path';
import { type HeldLock, type LockOptions, MemoryTokenStore, supportsLocking, type TokenStore } from '@crm/core';
import { CONFORMANCE_CASES, type ConformanceOptions, runConformance } from '../src/index';
import { jsonFileOptions } from './fixtures/json-file-options';

const fixtures = join(__dirname, 'fixtures');
const LOCKING_CASES = CONFORMANCE_CASES.filter((item) => item.group === 'locking').map((item) => item.id);
const PROCESS_CASES = LOCKING_CASES.filter((id) => id.startsWith('locking/processes-'));

/** A memory store without the lock capability, whatever this version of core gives MemoryTokenStore. */
function storeWithoutLock(): TokenStore {
  const store = new MemoryTokenStore();
  Object.defineProperty(store, 'withLock', { value: undefined });
  return store;
}

test('a store without withLock: every locking case is skipped with the reason', async () => {
  expect(supportsLocking(storeWithoutLock())).toBe(false);
  const report = await runConformance({ create: storeWithoutLock, sharedAcrossProcesses: false, filter: 'locking/' });
  expect(report.results.map((result) => [result.id, result.status, result.error])).toEqual(
    LOCKING_CASES.map((id) => [id, 'skipped', 'the store has no withLock']),
  );
  expect(report.failed).toBe(0);
});

test('a store with withLock but no share/openShared/module: the cases needing processes are skipped, naming why', async () => {
  const { share, openShared, ...inProcess } = jsonFileOptions(true);
  const report = await runConformance({ ...(inProcess as unknown as ConformanceOptions), filter: 'locking/' });
  const skipped = report.results.filter((result) => result.status === 'skipped');
  expect(skipped.map((result) => result.id)).toEqual(PROCESS_CASES);
  for (const result of skipped) {
    expect(result.error).toBe(
      'needs worker processes, as the processes group does, which is switched off: no share/openShared/module (missing: share, openShared, module)',
    );
  }
  expect(report.results.filter((result) => result.status === 'failed')).toEqual([]);
  expect(share && openShared).toBeTruthy();
});

test('a file store with owner-checked leases passes the whole group, across processes', async () => {
  const options = { ...jsonFileOptions(true), module: join(fixtures, 'json-file-options.ts'), filter: 'locking/' };
  const report = await runConformance(options as unknown as ConformanceOptions);
  const notPassed = report.results.filter((result) => result.status !== 'passed');
  // Until core has a TokenManager, the one-refresh case skips itself; nothing else may.
  expect(notPassed.map((result) => [result.id, result.status, result.error])).toEqual(
    notPassed.length === 0 ? [] : [['locking/processes-one-refresh', 'skipped', 'this @crm/core has no TokenManager']],
  );
}, 240_000);

/** The cases a store with a known lock defect fails, with its options module. */
async function failedWith(module: string): Promise<Array<[string, string | undefined]>> {
  const { default: options } = (await import(join(fixtures, module))) as { default: ConformanceOptions };
  const report = await runConformance({ ...options, module: join(fixtures, module), filter: 'locking/processes-' });
  expect(report.results.filter((result) => result.status === 'skipped')).toEqual([]);
  return report.results.filter((result) => result.status === 'failed').map((result) => [result.id, result.error]);
}

test('leases whose renewal and release skip the owner check: the frozen holder keeps writing and frees the new holder', async () => {
  expect(await failedWith('lease-no-owner-check-options.ts')).toEqual([
    ['locking/processes-frozen-holder', expect.stringMatching(/LOCK_LOST/)],
  ]);
}, 180_000);

test('leases that never expire: a killed or frozen holder keeps the lock', async () => {
  expect(await failedWith('lease-never-expires-options.ts')).toEqual([
    ['locking/processes-dead-holder', expect.stringMatching(/expected TokenStoreError|LOCK_TIMEOUT/)],
    ['locking/processes-frozen-holder', expect.stringMatching(/LOCK_TIMEOUT/)],
  ]);
}, 180_000);

test('a lock that excludes only within one process: the counter loses rounds and holders overlap across processes', async () => {
  const failed = await failedWith('lease-per-process-options.ts');
  expect(failed.map(([id]) => id)).toEqual(
    expect.arrayContaining(['locking/processes-counter', 'locking/processes-renewal', 'locking/processes-dead-holder']),
  );
  expect(failed.find(([id]) => id === 'locking/processes-counter')?.[1]).toMatch(/two holders at once|the counter is \d+, expected 32/);
}, 180_000);

/** A memory store whose withLock locks nothing: it runs the work at once, with a signal that never aborts. */
function noLockStore(): TokenStore {
  const withLock = async <T>(key: string, work: (lock: HeldLock) => Promise<T>, _options?: LockOptions): Promise<T> =>
    work({ key, signal: new AbortController().signal, confirm: async () => {} });
  return Object.assign(new MemoryTokenStore(), { withLock });
}

test('a withLock that excludes nothing fails the in-process cases', async () => {
  const report = await runConformance({ create: noLockStore, sharedAcrossProcesses: false, filter: 'locking/' });
  const failed = report.results.filter((result) => result.status === 'failed').map((result) => result.id);
  expect(failed).toEqual([
    'locking/bad-arguments',
    'locking/mutual-exclusion',
    'locking/independent-keys-and-storages',
    'locking/lock-timeout',
    'locking/closed',
  ]);
});
