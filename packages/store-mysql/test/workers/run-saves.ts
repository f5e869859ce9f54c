/**
 * Cross-process save rounds: `processes` workers (save-worker.ts) open a store on one fresh table, wait for
 * each other, then all save at once; afterwards the table is checked. Used by test/processes.test.ts and
 * bench/isolation.ts. No jest globals.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { dirname } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { createConnection, type RowDataPacket } from 'mysql2/promise';
import { roundSaves, type SaveReport, SHARED_USER } from './save-worker.js';

export interface RoundOptions {
  url: string;
  table: string;
  /** The pools' session default, e.g. `READ COMMITTED`; null: the server's default. */
  isolation: string | null;
  users: number;
  shared: number;
  inFlight: number;
}

export interface RoundResult {
  saves: number;
  /** Failed saves, as `CODE driver-code`. */
  failures: string[];
  /** Rows beyond the first for one user name. */
  duplicateUsers: number;
  /** Saves whose token is missing, or stored with other values than a save of it wrote. */
  lostTokens: number;
  /** Handed-back ids that are not the stored id of that user. */
  wrongIds: number;
  storedTokens: number;
  /** What each worker's sessions defaulted to. */
  isolations: string[];
  seconds: number;
}

interface Worker {
  child: ChildProcessWithoutNullStreams;
  lines: AsyncIterator<string>;
  reader: Interface;
}

/** A set of running worker processes, reused round after round (spawning costs a second of CPU each). */
export class SaveWorkers {
  private constructor(
    private readonly workers: Worker[],
    private readonly stderr: string[],
  ) {}

  static start(workerScript: string, url: string, processes: number): SaveWorkers {
    const stderr: string[] = [];
    const workers = Array.from({ length: processes }, (_, n) => {
      const child = spawn(process.execPath, ['--import', 'tsx', workerScript, url, String(n)], {
        cwd: dirname(dirname(dirname(workerScript))),
      });
      child.stderr.on('data', (chunk) => stderr.push(String(chunk)));
      const reader = createInterface({ input: child.stdout });
      return { child, reader, lines: reader[Symbol.asyncIterator]() };
    });
    return new SaveWorkers(workers, stderr);
  }

  private async ask<T>(worker: Worker, command: unknown): Promise<T> {
    worker.child.stdin.write(`${JSON.stringify(command)}\n`);
    const line = await worker.lines.next();
    if (line.done) throw new Error(`a save worker exited:\n${this.stderr.join('')}`);
    return JSON.parse(line.value) as T;
  }

  async round(options: RoundOptions): Promise<RoundResult> {
    const { url, table, isolation, users, shared, inFlight } = options;
    await Promise.all(this.workers.map((worker) => this.ask(worker, { type: 'open', table, isolation })));
    const started = performance.now();
    const reports = await Promise.all(
      this.workers.map((worker) => this.ask<SaveReport>(worker, { type: 'save', users, shared, inFlight })),
    );
    const seconds = (performance.now() - started) / 1000;
    return { ...(await checkTable(url, table, reports, options)), seconds };
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.workers.map(async ({ child, reader }) => {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        if (child.exitCode === null) child.stdin.end(`${JSON.stringify({ type: 'close' })}\n`);
        await exited;
        reader.close();
      }),
    );
  }
}

async function checkTable(url: string, table: string, reports: SaveReport[], options: RoundOptions): Promise<Omit<RoundResult, 'seconds'>> {
  const admin = await createConnection(url);
  const [rows] = await admin.query<RowDataPacket[]>(`SELECT id, user_name, access_token, refresh_token, expiry_time FROM \`${table}\``);
  await admin.end();
  const byUser = new Map<string, RowDataPacket[]>();
  for (const row of rows) byUser.set(row.user_name, [...(byUser.get(row.user_name) ?? []), row]);
  let lostTokens = 0;
  let wrongIds = 0;
  let saves = 0;
  reports.forEach((report, worker) => {
    roundSaves(worker, options).forEach((token, n) => {
      saves++;
      const stored = byUser.get(token.userName!)?.[0];
      const id = report.ids[n];
      if (id === null) return; // a failure, counted as such
      if (stored === undefined) lostTokens++;
      else if (stored.id !== id) wrongIds++;
      else if (token.userName !== SHARED_USER && stored.access_token !== token.accessToken) lostTokens++;
    });
  });
  // The shared user holds one whole save: its access and refresh tokens come from the same save.
  const sharedRow = byUser.get(SHARED_USER)?.[0];
  if (sharedRow !== undefined && sharedRow.access_token.replace('access-', '') !== sharedRow.refresh_token.replace('refresh-', '')) {
    lostTokens++;
  }
  return {
    saves,
    failures: reports.flatMap((report) => report.failures),
    duplicateUsers: rows.length - byUser.size,
    lostTokens,
    wrongIds,
    storedTokens: rows.length,
    isolations: reports.map((report) => report.isolation),
  };
}
