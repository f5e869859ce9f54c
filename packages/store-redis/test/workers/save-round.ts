/**
 * One concurrency round: several save-worker processes on one storage at once, then a count of what is
 * stored. Used by processes.test.ts (small rounds) and bench/concurrency.ts (the full target). No jest here.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { OAuthToken, UserSignature } from '@crm/core';
import type { RedisTokenStore } from '../../src/index.js';
import { type SaveWorkerJob, type SaveWorkerResult, savedUser } from './save-worker.js';

export interface RoundOptions {
  /** Path of save-worker.ts. */
  workerPath: string;
  /** Package folder, where tsx resolves. */
  cwd: string;
  processes: number;
  savesPerProcess: number;
  inFlight: number;
  sharedEvery: number;
}

export interface RoundFigures {
  saves: number;
  /** Failed saves, by code. */
  errors: string[];
  /** User names stored more than once. */
  duplicateUserNames: number;
  /** Ids stored more than once (in getTokens). */
  duplicateIds: number;
  /** New users not found by name with the access token of their save, or found under another id than listed. */
  lostTokens: number;
  /** Stored tokens beyond the new users and the one shared user. */
  extraTokens: number;
  /** The shared user's stored access token is not one of the values its saves wrote. */
  sharedWrong: boolean;
  /** Milliseconds of the round, process start-up included. */
  ms: number;
  /** Milliseconds the slowest process spent saving (from its first save to its last). */
  saveMs: number;
}

function runWorker(options: RoundOptions, job: SaveWorkerJob): Promise<SaveWorkerResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', options.workerPath, JSON.stringify(job)], {
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    // 'close', not 'exit': at 'exit' the last of its output may still be unread.
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`worker ${job.worker} exited with ${code}: ${stderr}`));
      else resolve(JSON.parse(stdout.trim().split('\n').pop() as string) as SaveWorkerResult);
    });
  });
}

/** Runs the workers on `store`'s storage (`storage` is what `share(store)` returned) and counts the outcome. */
export async function saveRound(options: RoundOptions, store: RedisTokenStore, storage: unknown): Promise<RoundFigures> {
  const tag = randomBytes(4).toString('hex');
  const jobs: SaveWorkerJob[] = Array.from({ length: options.processes }, (_, worker) => ({
    storage,
    worker,
    tag,
    saves: options.savesPerProcess,
    inFlight: options.inFlight,
    sharedEvery: options.sharedEvery,
  }));
  const started = Date.now();
  const results = await Promise.all(jobs.map((job) => runWorker(options, job)));
  const ms = Date.now() - started;

  const stored = await store.getTokens();
  const byName = new Map<string, OAuthToken[]>();
  for (const token of stored) byName.set(token.userName ?? '', [...(byName.get(token.userName ?? '') ?? []), token]);
  const sharedName = savedUser(jobs[0] as SaveWorkerJob, options.sharedEvery - 1).userName;
  const sharedValues = new Set<string>();
  let lostTokens = 0;
  let newUsers = 0;
  for (const job of jobs) {
    for (let n = 0; n < job.saves; n++) {
      const { userName, accessToken } = savedUser(job, n);
      if (userName === sharedName) {
        sharedValues.add(accessToken);
        continue;
      }
      newUsers++;
      // The index must agree with the hashes: found by name, with the values of its save, under the listed id.
      const found = await store.findToken(new OAuthToken({ userSignature: new UserSignature(userName) }));
      const listed = byName.get(userName)?.[0];
      if (found?.accessToken !== accessToken || listed?.id !== found?.id) lostTokens++;
    }
  }
  const shared = byName.get(sharedName) ?? [];
  return {
    saves: options.processes * options.savesPerProcess,
    errors: results.flatMap((result) => result.failures),
    duplicateUserNames: [...byName.values()].filter((tokens) => tokens.length > 1).length,
    duplicateIds: stored.length - new Set(stored.map((token) => token.id)).size,
    lostTokens,
    extraTokens: stored.length - newUsers - 1,
    sharedWrong: shared.length !== 1 || !sharedValues.has(shared[0]?.accessToken as string),
    ms,
    saveMs: Math.max(...results.map((result) => result.ms)),
  };
}
