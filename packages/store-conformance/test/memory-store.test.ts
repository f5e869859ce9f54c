import { MemoryTokenStore, supportsLocking } from '@crm/core';
import { CONFORMANCE_CASES, formatReport, runConformance } from '../src/index';
import { describeTokenStore } from '../src/jest';

// The jest front end, as a store author uses it. The reference store lives in one process only.
describeTokenStore('MemoryTokenStore', { create: () => new MemoryTokenStore(), sharedAcrossProcesses: false });

// setup() and teardown() run once around the cases, in beforeAll and afterAll.
const calls: string[] = [];
describeTokenStore('MemoryTokenStore with setup and teardown', {
  create: () => {
    calls.push('create');
    return new MemoryTokenStore();
  },
  setup: () => {
    calls.push('setup');
  },
  teardown: () => {
    calls.push('teardown');
  },
  filter: 'round-trip/',
});
afterAll(() => {
  expect(calls[0]).toBe('setup');
  expect(calls.at(-1)).toBe('teardown');
  expect(calls.filter((call) => call === 'setup' || call === 'teardown')).toEqual(['setup', 'teardown']);
});

test('runConformance: every case passes; what is switched off is named with its reason', async () => {
  const report = await runConformance({ create: () => new MemoryTokenStore(), sharedAcrossProcesses: false });
  expect(report.results.filter((result) => result.status === 'failed')).toEqual([]);
  expect(report.skippedGroups).toEqual(['persistence', 'faults', 'processes']);
  expect(report.skipReasons).toEqual({
    persistence: 'no reopen option',
    faults: 'no injectFault option',
    processes: 'store declares sharedAcrossProcesses: false',
  });
  const switchedOff = CONFORMANCE_CASES.filter((item) => report.skippedGroups.includes(item.group)).length;
  // Cases that skip themselves: declared-limits (the reference store declares no limits), and the locking cases
  // that need worker processes (or all of them, for a core whose reference store has no withLock).
  const lockingIds = CONFORMANCE_CASES.filter((item) => item.group === 'locking').map((item) => item.id);
  const lockingSkips = supportsLocking(new MemoryTokenStore())
    ? lockingIds
        .filter((id) => id.startsWith('locking/processes-'))
        .map((id) => ({
          id,
          error: 'needs worker processes, as the processes group does, which is switched off: store declares sharedAcrossProcesses: false',
        }))
    : lockingIds.map((id) => ({ id, error: 'the store has no withLock' }));
  expect(report.results.filter((result) => result.status === 'skipped' && !report.skippedGroups.includes(result.group))).toEqual([
    expect.objectContaining({ id: 'hostile-values/declared-limits', error: 'the store declares no valueLimits' }),
    ...lockingSkips.map((skip) => expect.objectContaining(skip)),
  ]);
  expect(report.skipped).toBe(switchedOff + 1 + lockingSkips.length);
  expect(report.passed).toBe(CONFORMANCE_CASES.length - switchedOff - 1 - lockingSkips.length);
  const table = formatReport(report);
  expect(table).toContain(
    'switched off: persistence (no reopen option), faults (no injectFault option), processes (store declares sharedAcrossProcesses: false)',
  );
  expect(table).toContain('skipped hostile-values/declared-limits: the store declares no valueLimits');
  expect(table).toMatch(new RegExp(`${report.passed} passed, 0 failed, ${report.skipped} skipped$`));
});
