import type { TokenStore } from '@crm/core';
import { CaseSkipped } from './outcome.js';
import { checkOptions, executeCase, selectedCases, skipReasons } from './run.js';
import { CONFORMANCE_GROUPS, type ConformanceOptions } from './types.js';

type TestFunction = (name: string, run: () => Promise<void>, timeoutMs?: number) => void;
type HookFunction = (run: () => Promise<void>, timeoutMs?: number) => void;
interface JestGlobals {
  describe: (name: string, body: () => void) => void;
  test: TestFunction & { skip: (name: string, run: () => void) => void };
  beforeAll: HookFunction;
  afterAll: HookFunction;
}

/**
 * Declares the conformance suite as jest tests (also works with jest-compatible runners that provide
 * global `describe`, `test`, `beforeAll` and `afterAll`): one `describe` per group, one test per case.
 * `setup()` runs in `beforeAll`, `teardown()` in `afterAll`. For the `processes` group, set `options.module`
 * to the file that exports these options (e.g. `require.resolve('./conformance-options')`).
 * A case that skips itself at run time (e.g. `closing` on a store without `close`) passes: jest cannot skip
 * a test once it runs.
 */
export function describeTokenStore<Store extends TokenStore>(name: string, options: ConformanceOptions<Store>): void {
  const { describe, test, beforeAll, afterAll } = globalThis as unknown as JestGlobals;
  if (typeof describe !== 'function' || typeof test !== 'function' || typeof beforeAll !== 'function') {
    throw new Error(
      'describeTokenStore needs the global describe, test and beforeAll of jest or a compatible runner; use runConformance elsewhere',
    );
  }
  const general = options as unknown as ConformanceOptions;
  checkOptions(general);
  const reasons = skipReasons(general);
  const cases = selectedCases(general);
  const timeoutMs = (options.caseTimeoutMs ?? 30000) * 3 + 5000; // the case, waiting for its calls, closing
  describe(`${name} conformance`, () => {
    if (cases.some((item) => reasons[item.group] === undefined)) {
      beforeAll(async () => {
        await options.setup?.();
      }, timeoutMs);
      afterAll(async () => {
        await options.teardown?.();
      }, timeoutMs);
    }
    for (const group of CONFORMANCE_GROUPS) {
      const inGroup = cases.filter((item) => item.group === group);
      if (inGroup.length === 0) continue;
      describe(group, () => {
        for (const item of inGroup) {
          const title = `${item.id}: ${item.title}`;
          const reason = reasons[group];
          if (reason !== undefined) test.skip(`${title} (switched off: ${reason})`, () => {});
          else
            test(
              title,
              async () => {
                try {
                  await executeCase(item, general);
                } catch (error) {
                  if (!(error instanceof CaseSkipped)) throw error;
                }
              },
              timeoutMs,
            );
        }
      });
    }
  });
}
