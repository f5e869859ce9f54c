import { type SpawnOptions, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OAuthToken, UserSignature } from '@crm/core';
import Database from 'better-sqlite3';
import { SQLiteTokenStore } from '../src/index.js';

/** Several OS processes on one SQLite file. The workers (test/workers/) load the built package, as an app would. */

const PACKAGE = join(__dirname, '..');
const folders: string[] = [];

function tempFolder(): string {
  const folder = mkdtempSync(join(tmpdir(), 'crm-sqlite-test-'));
  folders.push(folder);
  return folder;
}

afterEach(() => {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

/** A missing build is an error, not a skip. */
function workerScript(name: string): string {
  if (!existsSync(join(PACKAGE, 'dist', 'index.js'))) {
    throw new Error('packages/store-sqlite/dist is missing: run `pnpm build` in packages/store-sqlite before these tests');
  }
  return join(PACKAGE, 'test', 'workers', name);
}

interface Worker {
  /** Resolves on the worker's first output line (its "ready"). */
  ready: Promise<void>;
  /** Sends the start signal. */
  start(): void;
  /** Resolves with the worker's last output line, parsed; rejects when it exits non-zero. */
  result: Promise<unknown>;
}

/** Starts `node script ...args`; its stdout carries "ready" and then one JSON line. */
function startWorker(script: string, args: string[], options: SpawnOptions = {}): Worker {
  const child = spawn(process.execPath, [script, ...args], { ...options, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    if (stdout.includes('\n')) markReady();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const result = new Promise<unknown>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      markReady();
      const lines = stdout.trim().split('\n');
      if (code !== 0) reject(new Error(`worker exited with ${code ?? signal}: ${stderr || stdout}`));
      else resolve(JSON.parse(lines[lines.length - 1] as string));
    });
  });
  return { ready, start: () => child.stdin?.write('go\n'), result };
}

const WORKERS = 4;
const DISTINCT_USERS = 250;
const SHARED_SAVES = 50;

test('4 processes saving 250 users each and 50 times one shared user end with 1001 tokens and 1001 ids', async () => {
  const filename = join(tempFolder(), 'shared.db');
  await new SQLiteTokenStore({ filename }).close(); // the schema exists before the race, as in a deployed app
  const script = workerScript('save-worker.mjs');
  const workers = Array.from({ length: WORKERS }, (_, worker) =>
    startWorker(script, [filename, String(worker), String(DISTINCT_USERS), String(SHARED_SAVES)]),
  );
  await Promise.all(workers.map((worker) => worker.ready));
  for (const worker of workers) worker.start();
  const results = (await Promise.all(workers.map((worker) => worker.result))) as { saved: number; failures: string[] }[];

  for (const result of results) expect(result).toEqual({ saved: DISTINCT_USERS + SHARED_SAVES, failures: [] });
  const store = new SQLiteTokenStore({ filename });
  const tokens = await store.getTokens();
  await store.close();
  expect(tokens).toHaveLength(WORKERS * DISTINCT_USERS + 1);
  expect(new Set(tokens.map((token) => token.id)).size).toBe(WORKERS * DISTINCT_USERS + 1);
  expect(new Set(tokens.map((token) => token.userName)).size).toBe(WORKERS * DISTINCT_USERS + 1);
  // Each process's own users all arrived, each with its own last write.
  for (let worker = 0; worker < WORKERS; worker += 1) {
    const own = tokens.filter((token) => token.userName?.startsWith(`user-${worker}-`));
    expect(own).toHaveLength(DISTINCT_USERS);
    for (const token of own) expect(token.accessToken).toBe(token.userName?.replace(/^user-(\d+-\d+)@example\.com:1$/, 'access-$1'));
  }
  // The shared user holds one of the values written to it, and its access and refresh tokens come from the same save.
  const shared = tokens.find((token) => token.userName === 'shared@example.com:1');
  expect(shared?.accessToken).toMatch(/^access-\d-shared-\d+$/);
  expect(shared?.refreshToken).toBe(`refresh-${shared?.accessToken}`);

  const database = new Database(filename, { readonly: true });
  expect(database.prepare('SELECT COUNT(*) AS tokens, COUNT(DISTINCT id) AS ids FROM oauthtoken').get()).toEqual({
    tokens: 1001,
    ids: 1001,
  });
  database.close();
});

/**
 * A process of another user on a read-only file. Tests run as root, and root writes through a 0444 mode,
 * so the file is opened by a child process running as `nobody` (uid 65534): the kernel then refuses writes
 * as it would for any app user. Not as root, the child runs as the current user, for whom the mode works anyway.
 */
describe('a read-only file, opened by another process', () => {
  const asUnprivileged = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};

  /** A database in a folder anyone may write, holding ann, made readable by everyone and writable by no one. */
  async function readOnlyDatabase(journalMode: 'WAL' | 'DELETE'): Promise<string> {
    const folder = tempFolder();
    chmodSync(folder, 0o777);
    const filename = join(folder, 'tokens.db');
    const store = new SQLiteTokenStore({ filename, journalMode });
    await store.saveToken(new OAuthToken({ userSignature: new UserSignature('ann@example.com:1'), accessToken: 'access-ann' }));
    await store.close();
    chmodSync(filename, 0o444);
    return filename;
  }

  const probe = (filename: string) => startWorker(workerScript('probe-worker.mjs'), [filename, 'ann@example.com:1'], asUnprivileged).result;

  test('set up by this store (WAL): reads work, a save is BACKEND_FAILURE and changes nothing', async () => {
    const filename = await readOnlyDatabase('WAL');
    expect(await probe(filename)).toEqual({ open: 'ok', find: 'access-ann', save: 'BACKEND_FAILURE:saveToken', count: 1, close: 'ok' });
    const store = new SQLiteTokenStore({ filename, readonly: true });
    expect((await store.getTokens()).map((token) => token.accessToken)).toEqual(['access-ann']);
    await store.close();
  });

  test('not yet in WAL mode: opening is BACKEND_FAILURE, since the journal mode cannot be set', async () => {
    const filename = await readOnlyDatabase('DELETE');
    expect(await probe(filename)).toEqual({ open: 'BACKEND_FAILURE:open' });
  });
});
