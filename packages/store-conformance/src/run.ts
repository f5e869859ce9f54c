import { randomBytes } from 'node:crypto';
import type { TokenStore } from '@crm/core';
import { CONFORMANCE_CASES } from './cases/index.js';
import type { CaseContext, CaseResult, ConformanceCase, ConformanceGroup, ConformanceOptions, ConformanceReport } from './types.js';

const DEFAULT_CASE_TIMEOUT_MS = 30000;

/** The groups the options switch off: the declared ones, and `persistence` when there is no `reopen`. */
export function skippedGroups(options: ConformanceOptions): ConformanceGroup[] {
  const skipped = new Set(options.skip ?? []);
  if (!options.reopen) skipped.add('persistence');
  return [...skipped];
}

/** The cases `options.filter` selects (all without a filter). */
export function selectedCases(options: ConformanceOptions): ConformanceCase[] {
  const filter = options.filter;
  return CONFORMANCE_CASES.filter((item) => !filter || item.id.includes(filter) || item.title.includes(filter));
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Runs one case on fresh stores and cleans up after it: every store the case opened is closed, and every
 * store made by `create()` is destroyed. Throws the case's failure.
 */
export async function executeCase(item: ConformanceCase, options: ConformanceOptions): Promise<void> {
  const created: TokenStore[] = [];
  const reopened: TokenStore[] = [];
  const runId = randomBytes(6).toString('hex');
  let counter = 0;
  const create = async () => {
    const store = await options.create();
    created.push(store);
    return store;
  };
  try {
    const store = await create();
    const context: CaseContext = {
      store,
      async reopen() {
        if (!options.reopen) throw new Error('this case needs the reopen option');
        const again = await options.reopen(store);
        reopened.push(again);
        return again;
      },
      canReopen: options.reopen !== undefined,
      createSibling: create,
      unique: (prefix) => `${prefix}-${runId}-${++counter}`,
    };
    const timeoutMs = options.caseTimeoutMs ?? DEFAULT_CASE_TIMEOUT_MS;
    await withTimeout(item.run(context), timeoutMs, `case ${item.id}`);
  } finally {
    for (const store of [...reopened, ...created]) await store.close?.();
    for (const store of created) await options.destroy?.(store);
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Runs the suite, case after case, and reports every result. Never throws for a failing store: the report
 * says what failed and why.
 */
export async function runConformance(options: ConformanceOptions, onResult?: (result: CaseResult) => void): Promise<ConformanceReport> {
  const skipped = skippedGroups(options);
  const results: CaseResult[] = [];
  for (const item of selectedCases(options)) {
    const started = Date.now();
    let result: CaseResult;
    if (skipped.includes(item.group)) {
      result = {
        id: item.id,
        title: item.title,
        group: item.group,
        status: 'skipped',
        durationMs: 0,
        error: `group ${item.group} switched off`,
      };
    } else {
      try {
        await executeCase(item, options);
        result = { id: item.id, title: item.title, group: item.group, status: 'passed', durationMs: Date.now() - started };
      } catch (error) {
        result = {
          id: item.id,
          title: item.title,
          group: item.group,
          status: 'failed',
          durationMs: Date.now() - started,
          error: errorText(error),
        };
      }
    }
    results.push(result);
    onResult?.(result);
  }
  return {
    passed: results.filter((result) => result.status === 'passed').length,
    failed: results.filter((result) => result.status === 'failed').length,
    skipped: results.filter((result) => result.status === 'skipped').length,
    skippedGroups: skipped,
    results,
  };
}
