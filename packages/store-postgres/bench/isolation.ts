/**
 * Issue 9, item 4, the full target: 20 runs of 4 processes × 16 saves in flight (48 new users and 12
 * saves of one shared user per process) under each default isolation level, set per pool. Prints, per
 * level, the failed saves by code, duplicate users and lost tokens. Runs on a throwaway server (64
 * connections at once). `pnpm bench:isolation [runs] [users] [shared] [operationTimeoutMs] [levels,...]`.
 */
import { fileURLToPath } from 'node:url';
import { startThrowawayPostgres } from '@crm/test-services/postgres';
import pg from 'pg';
import { saveRound } from '../test/workers/run-saves.js';

const [runs = 20, users = 48, shared = 12, operationTimeoutMs = 5000] = process.argv.slice(2).map(Number);
const workerScript = fileURLToPath(new URL('../test/workers/save-worker.ts', import.meta.url));
const LEVELS = process.argv[6]?.split(',') ?? ['read committed', 'repeatable read', 'serializable'];

const server = await startThrowawayPostgres();
try {
  const client = new pg.Client({ connectionString: server.url });
  await client.connect();
  await client.query('CREATE SCHEMA bench');
  await client.end();
  console.log(
    `${runs} runs × 4 processes × ${users + shared} saves (${users} new users + ${shared} to one shared user), 16 in flight per process, operationTimeoutMs ${operationTimeoutMs}`,
  );
  console.log('level            | saves | failed | failures by code              | duplicate users | lost tokens | seconds/run');
  for (const isolation of LEVELS) {
    const total = { saves: 0, failed: 0, duplicates: 0, lost: 0, seconds: 0 };
    const codes: Record<string, number> = {};
    for (let run = 0; run < runs; run++) {
      const result = await saveRound({
        workerScript,
        url: server.url,
        schema: 'bench',
        processes: 4,
        users,
        shared,
        inFlight: 16,
        isolation,
        operationTimeoutMs,
      });
      if (result.isolations.some((level) => level !== isolation)) throw new Error(`sessions defaulted to ${result.isolations.join(', ')}`);
      total.saves += result.saves;
      total.failed += result.failures.length;
      total.duplicates += result.duplicateUsers;
      total.lost += result.lostTokens;
      total.seconds += result.seconds;
      for (const failure of result.failures) codes[failure] = (codes[failure] ?? 0) + 1;
    }
    console.log(
      [
        isolation.padEnd(16),
        String(total.saves).padStart(5),
        String(total.failed).padStart(6),
        (JSON.stringify(codes) === '{}' ? '-' : JSON.stringify(codes)).padEnd(29),
        String(total.duplicates).padStart(15),
        String(total.lost).padStart(11),
        (total.seconds / runs).toFixed(1).padStart(11),
      ].join(' | '),
    );
  }
} finally {
  await server.destroy();
}
