import { randomBytes } from 'node:crypto';
import type { TokenStore } from '@crm/core';
import { CONFORMANCE_CASES } from './cases/index.js';
import { CaseSkipped, describeError } from './outcome.js';
import { skipReasons } from './skips.js';
import {
  type CaseContext,
  type CaseResult,
  CONFORMANCE_GROUPS,
  type ConformanceCase,
  type ConformanceOptions,
  type ConformanceReport,
} from './types.js';

export { skippedGroups, skipReasons } from './skips.js';

const DEFAULT_CASE_TIMEOUT_MS = 30000;

/**
 * Throws a clear Error for options the suite cannot run with: no `create`, or an unknown group in `skip`
 * (a typo there would otherwise silently run, or silently skip, the wrong group).
 */
export function checkOptions(options: ConformanceOptions): void {
  if (typeof options?.create !== 'function') throw new Error('conformance options need a create() function');
  if (options.skip !== undefined && !Array.isArray(options.skip)) throw new Error('skip must be an array of group names');
  for (const group of options.skip ?? []) {
    if (!(CONFORMANCE_GROUPS as readonly string[]).includes(group)) {
      throw new Error(`unknown group "${String(group)}" in skip; the groups are: ${CONFORMANCE_GROUPS.join(', ')}`);
    }
  }
}

/** The cases `options.filter` selects (all without a filter). */
export function selectedCases(options: ConformanceOptions): ConformanceCase[] {
  const filter = options.filter;
  return CONFORMANCE_CASES.filter((item) => !filter || item.id.includes(filter) || item.title.includes(filter));
}

/** Races `promise` against a timer; the timer never keeps the process alive once the race is decided. */
function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The store as a case sees it: every promise a method returns is kept in `pending` until it settles, so the
 * suite can wait for a case's last operations before it closes and destroys the storage under them.
 * Methods run on the store itself (not on the proxy), so stores with `#private` fields work.
 */
function tracked(store: TokenStore, pending: Set<Promise<unknown>>): TokenStore {
  return new Proxy(store, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const result: unknown = (value as (...args: unknown[]) => unknown).apply(target, args);
        if (result instanceof Promise || (typeof result === 'object' && result !== null && 'then' in result)) {
          const settled: Promise<unknown> = Promise.resolve(result).then(
            () => pending.delete(settled),
            () => pending.delete(settled),
          );
          pending.add(settled);
        }
        return result;
      };
    },
  });
}

/** Waits until every tracked call settled (calls may start others), at most `timeoutMs`. True when none is left. */
async function settle(pending: Set<Promise<unknown>>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (pending.size > 0 && Date.now() < deadline) {
    await withTimeout(Promise.allSettled([...pending]), deadline - Date.now(), 'pending store calls').catch(() => {});
  }
  return pending.size === 0;
}

/**
 * Runs one case on fresh stores and cleans up after it: waits for every store call the case started, then
 * closes every store the case opened and destroys every store made by `create()`. Throws the case's failure;
 * throws `CaseSkipped` when the case cannot run on this store.
 */
export async function executeCase(item: ConformanceCase, options: ConformanceOptions): Promise<void> {
  const created: TokenStore[] = [];
  const reopened: TokenStore[] = [];
  const pending = new Set<Promise<unknown>>();
  const ended = new AbortController();
  const timeoutMs = options.caseTimeoutMs ?? DEFAULT_CASE_TIMEOUT_MS;
  const runId = randomBytes(6).toString('hex');
  let counter = 0;
  const create = async () => {
    const store = await options.create();
    created.push(store);
    return store;
  };
  let failure: unknown;
  try {
    const store = await create();
    const context: CaseContext = {
      store: tracked(store, pending),
      async reopen() {
        if (!options.reopen) throw new Error('this case needs the reopen option');
        const again = await options.reopen(store);
        reopened.push(again);
        return tracked(again, pending);
      },
      canReopen: options.reopen !== undefined,
      async openShared() {
        if (!options.share || !options.openShared) throw new Error('this case needs the share and openShared options');
        // Through JSON, as a worker process gets it: a description that only works in this process fails here too.
        const description = JSON.parse(JSON.stringify(await options.share(store))) as unknown;
        const again = await options.openShared(description);
        reopened.push(again);
        return tracked(again, pending);
      },
      createSibling: async () => tracked(await create(), pending),
      unique: (prefix) => `${prefix}-${runId}-${++counter}`,
      valueLimits: options.valueLimits ?? {},
      options,
      async injectFault() {
        if (!options.injectFault) throw new Error('this case needs the injectFault option');
        await options.injectFault(store);
      },
      async share() {
        if (!options.share) throw new Error('this case needs the share option');
        return options.share(store);
      },
      signal: ended.signal,
      skip(reason) {
        throw new CaseSkipped(reason);
      },
    };
    await withTimeout(item.run(context), timeoutMs, `case ${item.id}`);
  } catch (error) {
    failure = error;
  }
  ended.abort();
  // Close only once the case's own calls are done: closing under a running save tests nothing but the suite.
  const settled = await settle(pending, timeoutMs);
  try {
    for (const store of [...reopened, ...created]) await withTimeout(Promise.resolve(store.close?.()), timeoutMs, 'store.close()');
    for (const store of created) await withTimeout(Promise.resolve(options.destroy?.(store)), timeoutMs, 'destroy(store)');
  } catch (error) {
    failure ??= error;
  }
  if (failure !== undefined) throw failure;
  if (!settled) throw new Error(`${pending.size} store call(s) still had not settled ${timeoutMs} ms after the case ended`);
}

function resultOf(item: ConformanceCase, status: CaseResult['status'], durationMs: number, error?: string): CaseResult {
  const result: CaseResult = { id: item.id, title: item.title, group: item.group, status, durationMs };
  if (error !== undefined) result.error = error;
  return result;
}

/**
 * Runs the suite, case after case, and reports every result: `setup()` once before the first case that runs,
 * `teardown()` once after the last (also after failures). Never throws for a failing store: the report says
 * what failed and why. Throws for options it cannot run with (see `checkOptions`).
 */
export async function runConformance(options: ConformanceOptions, onResult?: (result: CaseResult) => void): Promise<ConformanceReport> {
  checkOptions(options);
  const reasons = skipReasons(options);
  const results: CaseResult[] = [];
  let setUp = false;
  let setupError: string | undefined;
  let teardownError: string | undefined;
  try {
    for (const item of selectedCases(options)) {
      const started = Date.now();
      let result: CaseResult;
      const reason = reasons[item.group];
      if (reason !== undefined) {
        result = resultOf(item, 'skipped', 0, `group ${item.group} switched off: ${reason}`);
      } else {
        if (!setUp) {
          setUp = true;
          try {
            await options.setup?.();
          } catch (error) {
            setupError = `setup() failed: ${describeError(error)}`;
          }
        }
        if (setupError !== undefined) {
          result = resultOf(item, 'failed', 0, setupError);
        } else {
          try {
            await executeCase(item, options);
            result = resultOf(item, 'passed', Date.now() - started);
          } catch (error) {
            result =
              error instanceof CaseSkipped
                ? resultOf(item, 'skipped', Date.now() - started, error.message)
                : resultOf(item, 'failed', Date.now() - started, describeError(error));
          }
        }
      }
      results.push(result);
      onResult?.(result);
    }
  } finally {
    if (setUp) {
      try {
        await options.teardown?.();
      } catch (error) {
        teardownError = `teardown() failed: ${describeError(error)}`;
      }
    }
  }
  const report: ConformanceReport = {
    passed: results.filter((result) => result.status === 'passed').length,
    failed: results.filter((result) => result.status === 'failed').length,
    skipped: results.filter((result) => result.status === 'skipped').length,
    skippedGroups: CONFORMANCE_GROUPS.filter((group) => reasons[group] !== undefined),
    skipReasons: reasons,
    results,
  };
  if (teardownError !== undefined) report.teardownError = teardownError;
  return report;
}
