/** How the suite describes what went wrong, and how a case says it cannot run. */

/** Thrown by `context.skip(reason)`: the case ends as skipped, with the reason in the report. */
export class CaseSkipped extends Error {
  override readonly name = 'CaseSkipped';
}

/** How many stack frames a failure shows: enough to find the line in the store, short enough for a table. */
const STACK_LINES = 3;

/**
 * An error as one short text: an assertion's own message; anything else (a TypeError from the store, a
 * TokenStoreError nobody expected) as its name, code, message and first stack frames, so the author of a
 * store sees where it broke, not just `got TypeError`.
 */
export function describeError(error: unknown): string {
  if (!(error instanceof Error) && (typeof error !== 'object' || error === null || typeof (error as Error).message !== 'string')) {
    return `a non-error value was thrown (${error === null ? 'null' : typeof error})`;
  }
  const thrown = error as Error & { code?: unknown };
  if (thrown.name === 'AssertionError') return thrown.message;
  const name = typeof thrown.name === 'string' && thrown.name !== '' ? thrown.name : 'Error';
  const code = typeof thrown.code === 'string' ? ` ${thrown.code}` : '';
  const frames = typeof thrown.stack === 'string' ? thrown.stack.split('\n').filter((line) => /^\s+at /.test(line)) : [];
  return [`${name}${code}: ${thrown.message}`, ...frames.slice(0, STACK_LINES).map((line) => `    ${line.trim()}`)].join('\n');
}
