/**
 * Runs one cross-process save round: `processes` workers (save-worker.ts) save into one fresh table at
 * once, then the table is checked. Used by test/processes.test.ts and bench/isolation.ts. No jest globals.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

export interface WorkerJob {
  url: string;
  schema: string;
  table: string;
  worker: number;
  users: number;
  shared: number;
  inFlight: number;
  /** The pool's default_transaction_isolation, e.g. 'repeatable read'; absent: the server's default. */
  isolation?: string;
  /** The store's operationTimeoutMs; absent: the store's default. */
  operationTimeoutMs?: number;
}

export interface WorkerSummary {
  worker: number;
  saves: number;
  /** One entry per failed save: its code, and the SQLSTATE of its cause when there is one. */
  failures: string[];
  /** What the pool's sessions really defaulted to, read back from the server. */
  isolation: string;
}

export const SHARED_USER = 'shared@zylker.com:1';

export interface RoundOptions {
  /** Absolute path of save-worker.ts (callers know it: `__dirname` under jest, `import.meta.url` in ESM scripts). */
  workerScript: string;
  url: string;
  schema: string;
  processes: number;
  users: number;
  shared: number;
  inFlight: number;
  isolation?: string;
  operationTimeoutMs?: number;
}

export interface RoundResult {
  saves: number;
  /** Failed saves, as `CODE SQLSTATE`. */
  failures: string[];
  /** Stored tokens more than one per user name (the unique index should make this 0). */
  duplicateUsers: number;
  /** Saved users missing from the table, or stored with other values than their save wrote. */
  lostTokens: number;
  /** Rows in the table: users × processes, plus one for the shared user. */
  storedTokens: number;
  /** What each worker's sessions defaulted to. */
  isolations: string[];
  seconds: number;
}

export async function saveRound(options: RoundOptions): Promise<RoundResult> {
  const table = `processes_${randomBytes(6).toString('hex')}`;
  const started = Date.now();
  // The workers all start on a table that does not exist yet: creating it must be safe across processes too.
  const outputs = await Promise.all(
    Array.from({ length: options.processes }, (_, worker) => {
      const { workerScript, ...rest } = options;
      const job: WorkerJob = { ...rest, table, worker };
      return run(process.execPath, ['--import', 'tsx', workerScript, JSON.stringify(job)], {
        cwd: join(dirname(workerScript), '..', '..'),
        timeout: 120000,
      });
    }),
  );
  const seconds = (Date.now() - started) / 1000;
  const summaries = outputs.map((output) => JSON.parse(output.stdout) as WorkerSummary);
  const client = new pg.Client({ connectionString: options.url });
  await client.connect();
  try {
    const qualified = `"${options.schema}"."${table}"`;
    const rows = (await client.query<Record<string, string | null>>(`SELECT * FROM ${qualified}`)).rows;
    await client.query(`DROP TABLE ${qualified}`);
    const perUser = new Map<string, Record<string, string | null>[]>();
    for (const row of rows) perUser.set(row.user_name as string, [...(perUser.get(row.user_name as string) ?? []), row]);
    let duplicateUsers = 0;
    for (const same of perUser.values()) duplicateUsers += same.length - 1;
    let lostTokens = 0;
    for (let worker = 0; worker < options.processes; worker++) {
      for (let index = 0; index < options.users; index++) {
        const row = perUser.get(`user-${worker}-${index}@zylker.com:1`)?.[0];
        const intact =
          row !== undefined &&
          row.access_token === `access-${worker}-${index}` &&
          row.refresh_token === `refresh-${worker}-${index}` &&
          row.expiry_time === String(1764000000000 + index);
        if (!intact) lostTokens++;
      }
    }
    if (options.shared > 0) {
      const shared = perUser.get(SHARED_USER)?.[0];
      const intact =
        shared !== undefined && shared.refresh_token === 'shared-refresh' && /^shared-access-\d+-\d+$/.test(shared.access_token ?? '');
      if (!intact) lostTokens++;
    }
    return {
      saves: summaries.reduce((sum, summary) => sum + summary.saves, 0),
      failures: summaries.flatMap((summary) => summary.failures),
      duplicateUsers,
      lostTokens,
      storedTokens: rows.length,
      isolations: summaries.map((summary) => summary.isolation),
      seconds,
    };
  } finally {
    await client.end();
  }
}
