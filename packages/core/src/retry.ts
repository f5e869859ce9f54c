export interface RetryOptions {
  /** How many times to run the work in all (at least 1). */
  maxAttempts: number;
  /** True for an error that means "lost a race, run again" (a deadlock, a unique violation on insert, a serialization failure). */
  shouldRetry(error: unknown): boolean;
  /** Called before each retry, e.g. to roll a transaction back. */
  beforeRetry?(error: unknown, attempt: number): Promise<void> | void;
  /** Stops retrying (and rethrows) once aborted, e.g. by the operation's deadline. */
  signal?: AbortSignal;
}

/**
 * Runs `work` until it succeeds, fails with an error `shouldRetry` refuses, or `maxAttempts` runs are
 * spent (then the last error is thrown). Between runs it waits a random 0-5 ms per attempt, so processes
 * that collided do not collide again in step.
 */
export async function retrySave<T>(options: RetryOptions, work: (attempt: number) => Promise<T>): Promise<T> {
  if (!Number.isSafeInteger(options.maxAttempts) || options.maxAttempts < 1) {
    throw new RangeError('retrySave: maxAttempts must be a whole number of at least 1');
  }
  for (let attempt = 1; ; attempt++) {
    // Checked right before every run: a write the deadline already reported as failed must never start.
    options.signal?.throwIfAborted();
    try {
      return await work(attempt);
    } catch (error) {
      if (attempt >= options.maxAttempts || options.signal?.aborted === true || !options.shouldRetry(error)) throw error;
      await options.beforeRetry?.(error, attempt);
      await pause(Math.random() * 5 * attempt, options.signal);
    }
  }
}

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const wake = () => {
      clearTimeout(timer);
      resolve();
    };
    // The listener goes when the pause ends: one signal may see many retries.
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', wake);
      resolve();
    }, ms);
    signal?.addEventListener('abort', wake, { once: true });
  });
}
