import { join } from 'node:path';
import { adminQuery, dropTable, mysqlUrl, randomTable, zohoCreateTable } from './conformance-options';
import { SaveWorkers } from './workers/run-saves';

/**
 * 4 processes save at once into one fresh table: each its own new users, plus one user they all share (its
 * first saves race in every process). Whatever isolation level the pools' sessions default to, on the
 * store's own table (one upsert per save) and on Zoho DBStore's unmigrated table (no unique index: locked
 * saves), no save may fail, no user may be stored twice and no saved token may be lost.
 * bench/isolation.ts runs the same at full size (20 rounds, 16 saves in flight per process).
 */
const LEVELS = ['READ COMMITTED', 'REPEATABLE READ', 'SERIALIZABLE'];
const TABLES = ['its own table', "Zoho DBStore's unmigrated table"] as const;
const ROUNDS = 2;

let workers: SaveWorkers;

beforeAll(async () => {
  workers = SaveWorkers.start(join(__dirname, 'workers', 'save-worker.ts'), await mysqlUrl(), 4);
});
afterAll(async () => {
  await workers?.stop();
});

describe.each(TABLES)('on %s', (kind) => {
  test.each(LEVELS)(
    '%s as the sessions default: 0 failures, 0 duplicate users, 0 lost tokens',
    async (isolation) => {
      const url = await mysqlUrl();
      for (let round = 0; round < ROUNDS; round++) {
        const table = randomTable('crm_procs');
        try {
          if (kind !== 'its own table') await adminQuery(zohoCreateTable(table));
          const result = await workers.round({ url, table, isolation, users: 40, shared: 12, inFlight: 8 });
          expect(result.isolations).toEqual(Array(4).fill(isolation.replace(' ', '-')));
          expect(result).toMatchObject({ failures: [], duplicateUsers: 0, lostTokens: 0, wrongIds: 0, storedTokens: 4 * 40 + 1 });
        } finally {
          await dropTable(table);
        }
      }
    },
    240000,
  );
});
