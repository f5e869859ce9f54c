// Takes the lock on `key` in `filename` with a lease of `leaseMs`, prints "locked", and holds it until it is
// killed: the lock tests end it with SIGKILL, so nothing releases the lease.
import { SQLiteTokenStore } from '../../dist/index.js';

const [filename, key, leaseMs] = process.argv.slice(2);
const store = new SQLiteTokenStore({ filename });
await store.withLock(
  key,
  async () => {
    process.stdout.write('locked\n');
    await new Promise(() => setInterval(() => {}, 60_000));
  },
  { leaseMs: Number(leaseMs), waitMs: 0 },
);
