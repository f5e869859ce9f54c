/**
 * A process that takes a lock and keeps it until told otherwise, for the tests that kill or freeze a holder.
 * Prints `locked`, then waits for a line on stdin: `confirm` calls confirm() and prints `confirm ok` or
 * `confirm <error code>`, then `aborted <true|false>` (the work's signal); the work then returns, withLock
 * releases, and the process prints `released` and closes the store.
 * Usage: tsx lock-holder.ts '{"storage": <what share returned>, "key": "...", "leaseMs": 1000}'
 */
import { createInterface } from 'node:readline';
import { TokenStoreError } from '@crm/core';
import { openShared } from '../conformance-options.js';

interface LockHolderJob {
  storage: unknown;
  key: string;
  leaseMs: number;
}

const job = JSON.parse(process.argv[2]!) as LockHolderJob;
const store = await openShared(job.storage);
const lines = createInterface({ input: process.stdin });
const nextLine = () => new Promise<string>((resolve) => lines.once('line', resolve));

await store.withLock(
  job.key,
  async (lock) => {
    process.stdout.write('locked\n');
    if ((await nextLine()) !== 'confirm') return;
    const outcome = await lock.confirm().then(
      () => 'ok',
      (error: unknown) => (TokenStoreError.is(error) ? error.code : String(error)),
    );
    process.stdout.write(`confirm ${outcome}\naborted ${lock.signal.aborted}\n`);
  },
  { leaseMs: job.leaseMs, waitMs: 10_000 },
);
process.stdout.write('released\n');
lines.close();
await store.close();
