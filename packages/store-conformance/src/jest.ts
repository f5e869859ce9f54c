import type { TokenStore } from '@crm/core';
import { executeCase, selectedCases, skippedGroups } from './run.js';
import { CONFORMANCE_GROUPS, type ConformanceOptions } from './types.js';

type TestFunction = (name: string, run: () => Promise<void>, timeoutMs?: number) => void;
interface JestGlobals {
  describe: (name: string, body: () => void) => void;
  test: TestFunction & { skip: (name: string, run: () => void) => void };
}

/**
 * Declares the conformance suite as jest tests (also works with jest-compatible runners that provide
 * global `describe` and `test`): one `describe` per group, one test per case.
 */
export function describeTokenStore<Store extends TokenStore>(name: string, options: ConformanceOptions<Store>): void {
  const { describe, test } = globalThis as unknown as JestGlobals;
  if (typeof describe !== 'function' || typeof test !== 'function') {
    throw new Error('describeTokenStore needs the global describe and test of jest or a compatible runner; use runConformance elsewhere');
  }
  const general = options as unknown as ConformanceOptions;
  const skipped = skippedGroups(general);
  const cases = selectedCases(general);
  const timeoutMs = (options.caseTimeoutMs ?? 30000) + 5000;
  describe(`${name} conformance`, () => {
    for (const group of CONFORMANCE_GROUPS) {
      const inGroup = cases.filter((item) => item.group === group);
      if (inGroup.length === 0) continue;
      describe(group, () => {
        for (const item of inGroup) {
          const title = `${item.id}: ${item.title}`;
          if (skipped.includes(group)) test.skip(title, () => {});
          else test(title, () => executeCase(item, general), timeoutMs);
        }
      });
    }
  });
}
