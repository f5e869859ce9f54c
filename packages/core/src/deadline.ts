import { TokenStoreError, type TokenStoreOperation } from './errors.js';
import { MAX_TIMER_MS } from './options.js';

export interface DeadlineOptions {
  /** Milliseconds the work may take. */
  timeoutMs: number;
  store: string;
  operation: TokenStoreOperation;
  /** What did not answer, for the message: `PostgreSQL`, `Redis`, `the token file's lock`. */
  backend: string;
}

/**
 * Runs `work` against a deadline. Past it, the caller gets BACKEND_UNAVAILABLE at once and `signal` is
 * aborted: the store must then stop the work for good (cancel the query, destroy the connection, drop the
 * queued command), because a write reported as failed must never be applied later. Whatever the work does
 * after the deadline is ignored. `signal.reason` is the TokenStoreError the caller got.
 */
export async function withDeadline<T>(options: DeadlineOptions, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  if (!Number.isSafeInteger(options.timeoutMs) || options.timeoutMs < 1 || options.timeoutMs > MAX_TIMER_MS) {
    throw new RangeError(`withDeadline: timeoutMs must be a whole number from 1 to ${MAX_TIMER_MS}`);
  }
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = TokenStoreError.unavailable(
        { store: options.store, operation: options.operation },
        `${options.backend} did not answer within ${options.timeoutMs} ms`,
      );
      controller.abort(error); // first, so nothing the work does after this moment can still be applied
      reject(error);
    }, options.timeoutMs);
  });
  // Through then(): a work function that throws synchronously (or returns no promise) still settles here.
  const running = Promise.resolve().then(() => work(controller.signal));
  running.catch(() => {}); // after the deadline its outcome is no longer anyone's
  try {
    return await Promise.race([running, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
