import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { OAuthToken } from '@crm/core';
import { FileTokenStore, HEADER_LINE } from '../src/index.js';
import type { SaveReport } from './workers/saver.js';

const SAVER = join(__dirname, 'workers', 'saver.ts');

interface Saver {
  child: ChildProcess;
  reports: SaveReport[];
  /** Resolves once the child printed `ready` (its store exists, no save has started), with its pid as it sees it. */
  ready: Promise<number>;
  /** Resolves with the exit code, or the signal that ended it. */
  exited: Promise<number | string>;
  /** Calls `listener` after each report line. */
  onReport(listener: (count: number) => void): void;
  stderr(): string;
}

function startSaver(
  path: string,
  prefix: string,
  newUsers: number,
  sharedUser: string,
  sharedSaves: number,
  inFlight: number,
  startFile?: string,
  /** A command that runs the worker, e.g. `['unshare', '--pid', '--fork']`. */
  wrapper: string[] = [],
  /** Keep the process alive after its last save until it is killed (at most a minute), so a kill is never too late. */
  holdAtEnd = false,
): Saver {
  const args = [
    path,
    prefix,
    String(newUsers),
    sharedUser,
    String(sharedSaves),
    String(inFlight),
    ...(startFile === undefined ? [] : [startFile]),
  ];
  const command = [...wrapper, process.execPath, '--import', 'tsx', SAVER, ...args];
  const child = spawn(command[0] as string, command.slice(1), {
    cwd: join(__dirname, '..'),
    stdio: ['ignore', 'pipe', 'pipe'],
    env: holdAtEnd ? { ...process.env, SAVER_HOLD_AT_END: '1' } : process.env,
  });
  const reports: SaveReport[] = [];
  const listeners: Array<(count: number) => void> = [];
  let errors = '';
  let pending = '';
  let markReady: (pid: number) => void = () => {};
  let failToStart: (error: Error) => void = () => {};
  const ready = new Promise<number>((resolve, reject) => {
    markReady = resolve;
    failToStart = reject;
  });
  // A missing command (unshare) must fail the test loudly, not leave it waiting.
  child.once('error', (error) => failToStart(new Error(`cannot run ${command[0]}: ${error.message}`)));
  child.once('close', () => failToStart(new Error(`the worker exited before it was ready: ${errors}`)));
  child.stderr?.on('data', (chunk: Buffer) => {
    errors += chunk.toString();
  });
  child.stdout?.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (line.startsWith('ready ')) markReady(Number(line.slice('ready '.length)));
      else if (line.startsWith('{')) {
        reports.push(JSON.parse(line) as SaveReport);
        for (const listener of listeners) listener(reports.length);
      }
    }
  });
  const exited = new Promise<number | string>((resolve) => {
    child.once('close', (code, signal) => resolve(code ?? signal ?? 'unknown'));
    child.once('error', () => resolve('could not start'));
  });
  return { child, reports, ready, exited, onReport: (listener) => listeners.push(listener), stderr: () => errors };
}

function byUserName(tokens: OAuthToken[]): Map<string, OAuthToken> {
  return new Map(tokens.map((token) => [token.userName as string, token]));
}

let folder: string;
beforeEach(() => {
  folder = mkdtempSync(join(tmpdir(), 'crm-store-file-processes-'));
});
afterEach(() => rmSync(folder, { recursive: true, force: true }));

test('SIGKILL at a random moment during 200 saves, 20 times: the file parses and holds every save that resolved', async () => {
  const path = join(folder, 'sdk_tokens.txt');
  const expectedUsers = new Map<string, SaveReport>();
  let kills = 0;
  let killsDuringSaves = 0;
  for (let run = 0; run < 20; run++) {
    // 160 new users and 40 saves of one shared user, one save at a time, so the save in flight is known.
    // The saver stays alive after its last save: on a loaded machine this process can read a report late, and
    // the kill must still find it running.
    const saver = startSaver(path, `run${run}`, 160, `shared-run${run}`, 40, 1, undefined, [], true);
    // Up to 190 reports, so the kill (at most 4 ms later) lands, as a rule, before the 200th save.
    const killAfter = Math.floor(Math.random() * 190);
    const extraDelayMs = Math.random() * 4;
    await saver.ready;
    const kill = () => setTimeout(() => saver.child.kill('SIGKILL'), extraDelayMs);
    if (killAfter === 0) kill();
    else saver.onReport((count) => count === killAfter && kill());
    const ended = await saver.exited;
    // A kill that came after the last save (this process read the report late) still ends the run, but is not
    // a kill during the saves.
    if (ended === 'SIGKILL' && saver.reports.length < 200) killsDuringSaves++;
    if (ended === 'SIGKILL') kills++;
    else expect({ ended, stderr: saver.stderr() }).toEqual({ ended: 0, stderr: '' });

    // A new store reads the file from scratch: it must parse and hold every reported save.
    const stored = await new FileTokenStore({ filename: path }).getTokens();
    const storedByUser = byUserName(stored);
    expect(new Set(stored.map((token) => token.id)).size).toBe(stored.length);
    let lastShared: SaveReport | undefined;
    for (const report of saver.reports) {
      if (report.userName === `shared-run${run}`) lastShared = report;
      else expectedUsers.set(report.userName, report);
    }
    for (const report of expectedUsers.values()) {
      const token = storedByUser.get(report.userName);
      expect({ user: report.userName, id: token?.id, accessToken: token?.accessToken }).toEqual({
        user: report.userName,
        id: report.id,
        accessToken: report.accessToken,
      });
    }
    if (lastShared !== undefined) {
      // The shared user holds the last resolved version, or the one in flight when the process died.
      const version = Number(lastShared.accessToken.split('-').pop());
      const stillShared = storedByUser.get(lastShared.userName);
      expect(stillShared?.id).toBe(lastShared.id);
      expect([`run${run}-shared-${version}`, `run${run}-shared-${version + 1}`]).toContain(stillShared?.accessToken);
    }
    // At most the one save in flight may have landed beyond the reported ones.
    const sharedUsers = stored.filter((token) => token.userName?.startsWith('shared-')).length;
    expect(stored.length - sharedUsers - expectedUsers.size).toBeGreaterThanOrEqual(0);
    expect(stored.length - sharedUsers - expectedUsers.size).toBeLessThanOrEqual(1);
    for (const token of stored)
      if (!expectedUsers.has(token.userName as string) && !token.userName?.startsWith('shared-')) {
        // The unreported save that landed: it was in flight, and is the next user of this run.
        expectedUsers.set(token.userName as string, {
          userName: token.userName as string,
          id: token.id as string,
          accessToken: token.accessToken as string,
        });
      }
  }
  expect(kills).toBe(20);
  // Most kills land among the saves (the latest planned one is after 190 of 200 saves, at most 4 ms late).
  expect(killsDuringSaves).toBeGreaterThanOrEqual(15);
  // Temporary files of killed processes are removed when the next process takes their lock over.
  const leftovers = readdirSync(folder).filter((name) => name.endsWith('.tmp'));
  expect(leftovers.length).toBeLessThanOrEqual(1);
}, 300_000);

test('4 processes saving at once, after a dead process left its lock: 4 × 100 users and 4 × 25 saves of one shared user lose nothing', async () => {
  const path = join(folder, 'sdk_tokens.txt');
  // A lock left by a process that no longer exists: all four find it stale at once and must agree on one takeover.
  const dead = spawn(process.execPath, ['-e', '']);
  const deadPid = dead.pid as number;
  await new Promise((resolve) => dead.once('exit', resolve));
  writeFileSync(`${path}.lock`, JSON.stringify({ pid: deadPid, hostname: hostname(), createdAt: Date.now() }));

  // The four start together once all are up, so they find the stale lock at the same moment.
  const startFile = join(folder, 'start');
  const savers = Array.from({ length: 4 }, (_, n) => startSaver(path, `p${n}`, 100, 'shared@zylker.com', 25, 3, startFile));
  await Promise.all(savers.map((saver) => saver.ready));
  writeFileSync(startFile, '');
  const ends = await Promise.all(savers.map((saver) => saver.exited));
  expect(savers.map((saver, n) => ({ n, end: ends[n], stderr: saver.stderr() }))).toEqual(
    savers.map((_, n) => ({ n, end: 0, stderr: '' })),
  );

  const stored = await new FileTokenStore({ filename: path }).getTokens();
  expect(stored).toHaveLength(401);
  expect(new Set(stored.map((token) => token.id)).size).toBe(401);
  const storedByUser = byUserName(stored);
  for (const saver of savers) {
    expect(saver.reports).toHaveLength(125);
    for (const report of saver.reports) {
      const token = storedByUser.get(report.userName);
      expect(token?.id).toBe(report.id);
      if (report.userName !== 'shared@zylker.com') expect(token?.accessToken).toBe(report.accessToken);
    }
  }
  // Every save of the shared user wrote back the one id, and the stored version is one that was saved.
  const shared = storedByUser.get('shared@zylker.com');
  const sharedReports = savers.flatMap((saver) => saver.reports.filter((report) => report.userName === 'shared@zylker.com'));
  expect(new Set(sharedReports.map((report) => report.id))).toEqual(new Set([shared?.id]));
  expect(sharedReports.map((report) => report.accessToken)).toContain(shared?.accessToken);
  expect(readdirSync(folder).sort()).toEqual(['sdk_tokens.txt', 'start']);
}, 300_000);

test('3 processes that are each pid 1 in a PID namespace of their own (containers on one host) save 400 users each: none fails, none is lost', async () => {
  // Each one's pid is 1, so a lock check by pid alone takes a live holder's lock over as stale (about 70% of
  // these saves failed with BACKEND_UNAVAILABLE that way). Needs root and util-linux's unshare: without them
  // this test fails, it never skips.
  const path = join(folder, 'sdk_tokens.txt');
  const startFile = join(folder, 'start');
  const savers = Array.from({ length: 3 }, (_, n) =>
    startSaver(path, `ns${n}`, 400, 'unused', 0, 1, startFile, ['unshare', '--pid', '--fork']),
  );
  expect(await Promise.all(savers.map((saver) => saver.ready))).toEqual([1, 1, 1]);
  writeFileSync(startFile, '');
  const ends = await Promise.all(savers.map((saver) => saver.exited));
  expect(savers.map((saver, n) => ({ n, end: ends[n], stderr: saver.stderr() }))).toEqual(
    savers.map((_, n) => ({ n, end: 0, stderr: '' })),
  );
  const reports = savers.flatMap((saver) => saver.reports);
  expect({ attempted: reports.length, failed: reports.filter((report) => report.error !== undefined).length }).toEqual({
    attempted: 1200,
    failed: 0,
  });
  const stored = byUserName(await new FileTokenStore({ filename: path }).getTokens());
  expect(stored.size).toBe(1200);
  for (const report of reports) expect(stored.get(report.userName)?.id).toBe(report.id);
  expect(readdirSync(folder).sort()).toEqual(['sdk_tokens.txt', 'start']);
}, 300_000);

test('3 worker threads of this process save 40 users each to one file: none takes a live lock over, none fails, none is lost', async () => {
  // Each worker thread has its own globalThis, so its own set of the locks it holds: a lock check by pid alone
  // took the other threads' live locks over (about a third of these saves failed with BACKEND_UNAVAILABLE).
  const path = join(folder, 'sdk_tokens.txt');
  // Some tokens already there, so each locked read-modify-write takes a while and the threads wait for each other.
  const seed = Array.from({ length: 2000 }, (_, n) => `seed${n},seed${n}@zylker.com,cid,cs,1000.refresh${n},,,,,`);
  writeFileSync(path, `${HEADER_LINE}\n${seed.join('\n')}\n`);
  const threads = Array.from({ length: 3 }, (_, n) => {
    const worker = new Worker(join(__dirname, 'workers', 'thread-saver.mjs'), {
      workerData: { path, prefix: `thread${n}`, saves: 40 },
    });
    const messages: unknown[] = [];
    let arrived: () => void = () => {};
    worker.on('message', (message) => {
      messages.push(message);
      arrived();
    });
    const next = async (count: number) => {
      while (messages.length < count) await new Promise<void>((resolve) => (arrived = resolve));
      return messages[count - 1];
    };
    const exited = new Promise<number>((resolve, reject) => {
      worker.once('error', reject);
      worker.once('exit', resolve);
    });
    return { worker, next, exited };
  });
  // All threads start saving together, once each has loaded the store.
  await Promise.all(threads.map((thread) => thread.next(1)));
  for (const thread of threads) thread.worker.postMessage('start');
  const results = (await Promise.all(threads.map((thread) => thread.next(2)))) as Array<{ ok: number; errors: string[] }>;
  expect(await Promise.all(threads.map((thread) => thread.exited))).toEqual([0, 0, 0]);
  expect(results).toEqual(Array.from({ length: 3 }, () => ({ ok: 40, errors: [] })));
  const stored = await new FileTokenStore({ filename: path }).getTokens();
  expect(stored).toHaveLength(2120);
  expect(stored.filter((token) => token.userName?.startsWith('thread'))).toHaveLength(120);
  expect(readdirSync(folder)).toEqual(['sdk_tokens.txt']);
}, 300_000);
