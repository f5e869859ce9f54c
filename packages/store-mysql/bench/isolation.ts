/**
 * The isolation-level target of issue 9 at full size: for each session default (READ COMMITTED, REPEATABLE
 * READ, SERIALIZABLE, set per connection on the workers' pools, never server-wide) and each table (the
 * store's own, Zoho DBStore's unmigrated one), ROUNDS rounds of 4 processes each saving 60 new users and 25
 * updates of one shared user, 16 saves in flight per process. Prints failures, duplicate users and lost
 * tokens per configuration; all three must be 0.
 * Run: pnpm bench:isolation [rounds=20]
 */
import { fileURLToPath } from 'node:url';
import { ensureMySQL } from '@crm/test-services/mysql';
import { adminQuery, dropTable, randomTable, zohoCreateTable } from '../test/conformance-options.js';
import { SaveWorkers } from '../test/workers/run-saves.js';

const ROUNDS = Number(process.argv[2] ?? 20);
const LEVELS = ['READ COMMITTED', 'REPEATABLE READ', 'SERIALIZABLE'];
const TABLES = ['own', 'zoho'] as const;

const service = await ensureMySQL();
process.env.MYSQL_URL = service.url;
const workers = SaveWorkers.start(fileURLToPath(new URL('../test/workers/save-worker.ts', import.meta.url)), service.url, 4);
const lines: string[] = [];
try {
  for (const kind of TABLES) {
    for (const isolation of LEVELS) {
      const totals = { saves: 0, failures: 0, duplicateUsers: 0, lostTokens: 0, wrongIds: 0, roundsWithProblems: 0 };
      const seconds: number[] = [];
      const failureKinds = new Map<string, number>();
      for (let round = 0; round < ROUNDS; round++) {
        const table = randomTable('crm_isolation');
        try {
          if (kind === 'zoho') await adminQuery(zohoCreateTable(table));
          const result = await workers.round({ url: service.url, table, isolation, users: 60, shared: 25, inFlight: 16 });
          totals.saves += result.saves;
          totals.failures += result.failures.length;
          totals.duplicateUsers += result.duplicateUsers;
          totals.lostTokens += result.lostTokens;
          totals.wrongIds += result.wrongIds;
          if (result.failures.length + result.duplicateUsers + result.lostTokens + result.wrongIds > 0) totals.roundsWithProblems++;
          for (const failure of result.failures) failureKinds.set(failure, (failureKinds.get(failure) ?? 0) + 1);
          seconds.push(result.seconds);
        } finally {
          await dropTable(table);
        }
      }
      seconds.sort((a, b) => a - b);
      const kinds = [...failureKinds].map(([name, count]) => `${name} x${count}`).join(', ');
      const line =
        `${kind.padEnd(5)} ${isolation.padEnd(16)} rounds ${ROUNDS}  saves ${totals.saves}  failures ${totals.failures}  ` +
        `duplicate users ${totals.duplicateUsers}  lost tokens ${totals.lostTokens}  wrong ids ${totals.wrongIds}  ` +
        `rounds with a problem ${totals.roundsWithProblems}  median round ${seconds[Math.floor(seconds.length / 2)]!.toFixed(2)} s${kinds ? `  (${kinds})` : ''}`;
      lines.push(line);
      console.log(line);
    }
  }
} finally {
  await workers.stop();
  await service.stop();
}
