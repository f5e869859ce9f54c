/** The runner itself: groups, skips and their reasons, setup/teardown, cleanup order, and how failures read. */
import { MemoryTokenStore, type TokenStore } from '@crm/core';
import { CONFORMANCE_CASES, CONFORMANCE_GROUPS, executeCase, runConformance } from '../src/index';
import { describeTokenStore } from '../src/jest';

test('every group has several cases and case ids are unique', () => {
  for (const group of CONFORMANCE_GROUPS) expect(CONFORMANCE_CASES.filter((item) => item.group === group).length).toBeGreaterThanOrEqual(2);
  expect(new Set(CONFORMANCE_CASES.map((item) => item.id)).size).toBe(CONFORMANCE_CASES.length);
});

test('declared groups are skipped and named; a filter selects cases', async () => {
  const report = await runConformance({ create: () => new MemoryTokenStore(), skip: ['concurrency'], filter: 'concurrency/' });
  expect(report.results.length).toBeGreaterThan(0);
  expect(report.results.every((result) => result.status === 'skipped' && result.group === 'concurrency')).toBe(true);
  expect(report.results[0]?.error).toBe('group concurrency switched off: declared in skip');
  expect(report.skippedGroups).toContain('concurrency');
});

test('an unknown group in skip is a clear error listing the groups, in runConformance and describeTokenStore', async () => {
  const options = { create: () => new MemoryTokenStore(), skip: ['hostile'] as never[] };
  await expect(runConformance(options)).rejects.toThrow(
    /unknown group "hostile" in skip; the groups are: round-trip, find-rules, .*processes/,
  );
  expect(() => describeTokenStore('typo', options)).toThrow(/unknown group "hostile"/);
});

test('processes is switched off with the reason: the store says so, or share/openShared/module are missing', async () => {
  const off = await runConformance({ create: () => new MemoryTokenStore(), filter: 'processes/', sharedAcrossProcesses: false });
  expect(off.skipReasons.processes).toBe('store declares sharedAcrossProcesses: false');
  const missing = await runConformance({
    create: () => new MemoryTokenStore(),
    filter: 'processes/',
    share: () => ({}),
    openShared: () => new MemoryTokenStore(),
  });
  expect(missing.skipReasons.processes).toBe('no share/openShared/module (missing: module)');
  expect(missing.results.every((result) => result.status === 'skipped')).toBe(true);
});

test('each case gets fresh stores, and every store is closed and destroyed', async () => {
  const opened: TokenStore[] = [];
  const closed = new Set<TokenStore>();
  const destroyed = new Set<TokenStore>();
  const report = await runConformance({
    create: () => {
      const store = new MemoryTokenStore();
      const close = store.close.bind(store);
      store.close = async () => {
        closed.add(store);
        await close();
      };
      opened.push(store);
      return store;
    },
    destroy: (store) => {
      destroyed.add(store);
    },
    filter: 'delete/',
  });
  expect(report.failed).toBe(0);
  expect(new Set(opened).size).toBe(opened.length);
  expect(opened.length).toBe(report.passed + 1); // delete-tokens-only-own opens a sibling
  expect(opened.every((store) => closed.has(store) && destroyed.has(store))).toBe(true);
});

test('setup runs once before the first case and teardown once after the last, also when cases fail', async () => {
  const calls: string[] = [];
  const report = await runConformance({
    create: () => {
      calls.push('create');
      const store = new MemoryTokenStore();
      store.findTokenById = async () => null; // fails several cases
      return store;
    },
    setup: () => {
      calls.push('setup');
    },
    teardown: () => {
      calls.push('teardown');
    },
    filter: 'round-trip/',
  });
  expect(report.failed).toBeGreaterThan(0);
  expect(calls[0]).toBe('setup');
  expect(calls.at(-1)).toBe('teardown');
  expect(calls.filter((call) => call !== 'create')).toEqual(['setup', 'teardown']);
});

test('a failing setup fails every case with its message, and teardown still runs', async () => {
  let tornDown = false;
  const report = await runConformance({
    create: () => new MemoryTokenStore(),
    setup: () => {
      throw new Error('no database');
    },
    teardown: () => {
      tornDown = true;
    },
    filter: 'merge/',
  });
  expect(
    report.results.every((result) => result.status === 'failed' && result.error?.startsWith('setup() failed: Error: no database')),
  ).toBe(true);
  expect(tornDown).toBe(true);
});

test('a store that throws something other than a TokenStoreError is reported with name, message and stack frames', async () => {
  const report = await runConformance({
    create: () => {
      const store = new MemoryTokenStore();
      store.getTokens = async () => {
        throw new TypeError('rows is not iterable');
      };
      store.deleteToken = async () => {
        throw new RangeError('bad id');
      };
      return store;
    },
    filter: 'delete/',
  });
  const emptyStore = report.results.find((result) => result.id === 'delete/empty-store');
  expect(emptyStore?.error).toMatch(/^TypeError: rows is not iterable\n {4}at /);
  const deleteToken = report.results.find((result) => result.id === 'delete/delete-token');
  expect(deleteToken?.error).toMatch(/^RangeError: bad id\n {4}at /);
  const badIds = await runConformance({
    create: () => {
      const store = new MemoryTokenStore();
      store.deleteToken = async () => {
        throw new RangeError('bad id');
      };
      return store;
    },
    filter: 'bad-input/bad-ids',
  });
  expect(badIds.results[0]?.error).toMatch(/expected TokenStoreError INVALID_ARGUMENT, got RangeError: bad id\n {4}at /);
});

test('the suite waits for every call a case started before it closes the store, also when the case fails', async () => {
  for (const fails of [false, true]) {
    const events: string[] = [];
    const store = new MemoryTokenStore();
    store.getTokens = () =>
      new Promise((resolve) =>
        setTimeout(() => {
          events.push('getTokens settled');
          resolve([]);
        }, 200),
      );
    store.close = async () => {
      events.push('close');
    };
    const item = {
      id: 'delete/fire-and-forget',
      title: 'starts a call it never awaits',
      group: 'delete' as const,
      async run(context: { store: TokenStore }) {
        void context.store.getTokens();
        if (fails) throw new Error('the case failed');
      },
    };
    const outcome = executeCase(item, { create: () => store });
    if (fails) await expect(outcome).rejects.toThrow('the case failed');
    else await outcome;
    expect(events).toEqual(['getTokens settled', 'close']);
  }
});

test('a case that hangs fails after the case timeout instead of hanging the run', async () => {
  const report = await runConformance({
    create: () => {
      const store = new MemoryTokenStore();
      store.getTokens = () => new Promise(() => {});
      return store;
    },
    filter: 'delete/empty-store',
    caseTimeoutMs: 200,
  });
  expect(report.failed).toBe(1);
  expect(report.results[0]?.error).toMatch(/did not finish within 200 ms/);
});

test('closing: a store without close() skips the group with the reason', async () => {
  const report = await runConformance({
    create: () => {
      const store = new MemoryTokenStore();
      Object.defineProperty(store, 'close', { value: undefined });
      return store;
    },
    filter: 'closing/',
  });
  expect(report.results.map((result) => [result.status, result.error])).toEqual([
    ['skipped', 'the store has no close()'],
    ['skipped', 'the store has no close()'],
  ]);
});

test('processes: worker processes still busy when the case times out are killed', async () => {
  const { readdirSync, readFileSync, rmSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { default: hanging } = await import('./fixtures/hanging-options');
  const folders: string[] = [];
  const report = await runConformance({
    ...(hanging as unknown as Parameters<typeof runConformance>[0]),
    create: async () => {
      const store = await hanging.create();
      folders.push(store.folder);
      return store;
    },
    module: join(__dirname, 'fixtures/hanging-options.ts'),
    filter: 'processes/parallel-saves',
  });
  expect(report.results[0]?.error).toMatch(/did not finish within 20000 ms/);
  const pids = folders.flatMap((folder) => readdirSync(folder).map((file) => Number(readFileSync(join(folder, file), 'utf8'))));
  expect(pids.length).toBe(4); // every worker opened its store and then hung in its saves
  await new Promise((resolve) => setTimeout(resolve, 500));
  for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
}, 120000);
