import { MemoryTokenStore, type TokenStore } from '@crm/core';
import { CONFORMANCE_CASES, CONFORMANCE_GROUPS, formatReport, runConformance } from '../src/index';
import { describeTokenStore } from '../src/jest';

// The jest front end, as a store author uses it.
describeTokenStore('MemoryTokenStore', { create: () => new MemoryTokenStore() });

describe('runConformance against the reference store', () => {
  test('every case passes; persistence is reported as switched off without reopen', async () => {
    const report = await runConformance({ create: () => new MemoryTokenStore() });
    const persistence = CONFORMANCE_CASES.filter((item) => item.group === 'persistence').length;
    expect(report.failed).toBe(0);
    expect(report.skippedGroups).toEqual(['persistence']);
    expect(report.skipped).toBe(persistence);
    expect(report.passed).toBe(CONFORMANCE_CASES.length - persistence);
    expect(formatReport(report)).toMatch(new RegExp(`${report.passed} passed, 0 failed, ${persistence} skipped$`));
  });

  test('every group has several cases and case ids are unique', () => {
    for (const group of CONFORMANCE_GROUPS)
      expect(CONFORMANCE_CASES.filter((item) => item.group === group).length).toBeGreaterThanOrEqual(2);
    expect(new Set(CONFORMANCE_CASES.map((item) => item.id)).size).toBe(CONFORMANCE_CASES.length);
  });

  test('declared groups are skipped and named; a filter selects cases', async () => {
    const report = await runConformance({ create: () => new MemoryTokenStore(), skip: ['concurrency'], filter: 'concurrency/' });
    expect(report.results.every((result) => result.status === 'skipped' && result.group === 'concurrency')).toBe(true);
    expect(report.skippedGroups).toContain('concurrency');
  });

  test('each case gets fresh stores, and every store is closed and destroyed', async () => {
    const opened: TokenStore[] = [];
    const closed = new Set<TokenStore>();
    const destroyed = new Set<TokenStore>();
    const report = await runConformance({
      create: () => {
        const store = new MemoryTokenStore();
        store.close = async () => {
          closed.add(store);
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
});
