/**
 * Takes the withLock lock on a key of a token file, prints "locked", and holds it until it is killed: the
 * lock tests end it with SIGKILL, so nothing releases the lease.
 *
 * Arguments: <token file> <key> <leaseMs>
 */
import { FileTokenStore } from '../../src/index.js';

const [filename, key, leaseMs] = process.argv.slice(2);
const store = new FileTokenStore({ filename });
await store.withLock(
  key as string,
  async () => {
    process.stdout.write('locked\n');
    await new Promise(() => setInterval(() => {}, 60_000));
  },
  { leaseMs: Number(leaseMs), waitMs: 0 },
);
