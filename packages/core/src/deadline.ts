import { TokenStoreError, type TokenStoreOperation } from './errors.js';

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
 * after the deadline is ignored.
 */
export async function withDeadline<T>(options: DeadlineOptions, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(
        TokenStoreError.unavailable(
          { store: options.store, operation: options.operation },
          `${options.backend} did not answer within ${options.timeoutMs} ms`,
        ),
      );
      controller.abort();
    }, options.timeoutMs);
  });
  const running = work(controller.signal);
  running.catch(() => {}); // after the deadline its outcome is no longer anyone's
  try {
    return await Promise.race([running, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
