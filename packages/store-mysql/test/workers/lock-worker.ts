/**
 * Takes a lock and holds it until told to let go: prints `{"held":true}` once it holds it, then, on each line
 * `confirm` on stdin, calls confirm() and prints `{"confirm":"ok"}` or the error code; a line `release` lets go,
 * prints `{"released":true}` and exits. Arguments: url, table, key, leaseMs.
 */
import { createInterface } from 'node:readline';
import { TokenStoreError } from '@crm/core';
import { MySQLTokenStore } from '../../src/index.js';

const [url, table, key, leaseMs] = process.argv.slice(2) as [string, string, string, string];
const store = new MySQLTokenStore({ url, table });
const say = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

await store.withLock(
  key,
  async (lock) => {
    say({ held: true });
    for (let line = await lines.next(); !line.done && line.value !== 'release'; line = await lines.next()) {
      say({
        confirm: await lock.confirm().then(
          () => 'ok',
          (error: unknown) => (TokenStoreError.is(error) ? error.code : String(error)),
        ),
      });
    }
  },
  { leaseMs: Number(leaseMs), waitMs: 10000 },
);
say({ released: true });
await store.close();
process.exit(0);
