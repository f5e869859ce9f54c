import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type HeldLock, OAuthToken, supportsLocking, TokenStoreError, type TokenStoreErrorCode } from '@crm/core';
import Database from 'better-sqlite3';
import { SQLiteTokenStore } from '../src/index.js';

/** withLock on a real SQLite file: the lease table `<table>_locks`, shared by every connection and process. */

const PACKAGE = join(__dirname, '..');
const folders: string[] = [];
const stores: SQLiteTokenStore[] = [];
const children: ChildProcess[] = [];

function tempFile(): string {
  const folder = mkdtempSync(join(tmpdir(), 'crm-sqlite-lock-'));
  folders.push(folder);
  return join(folder, 'tokens.db');
}

function open(filename: string, options: Omit<ConstructorParameters<typeof SQLiteTokenStore>[0] & object, 'filename'> = {}) {
  const store = new SQLiteTokenStore({ filename, ...options });
  stores.push(store);
  return store;
}

afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  for (const store of stores.splice(0)) await store.close();
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

/** The code of the TokenStoreError `promise` rejects with, or 'resolved'. */
async function outcome(promise: Promise<unknown>): Promise<TokenStoreErrorCode | 'resolved'> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    if (!TokenStoreError.is(error)) throw error;
    expect(error.store).toBe('SQLiteTokenStore');
    return error.code;
  }
}

/** A lock held until `release()` is called; `held` resolves with the HeldLock once the work runs. */
function hold(store: SQLiteTokenStore, key: string, options: { leaseMs?: number; waitMs?: number } = {}) {
  let release: () => void = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let markHeld: (lock: HeldLock) => void = () => {};
  const held = new Promise<HeldLock>((resolve) => {
    markHeld = resolve;
  });
  const done = store.withLock(
    key,
    async (lock) => {
      markHeld(lock);
      await released;
      return 'done';
    },
    options,
  );
  return { held, release, done };
}

/** The lease rows, read through a connection of its own. */
function leaseRows(filename: string, table = 'oauthtoken'): { lock_key: string; owner: string; expires_at: number }[] {
  const database = new Database(filename, { readonly: true });
  try {
    return database.prepare(`SELECT lock_key, owner, expires_at FROM "${table}_locks"`).all() as never;
  } finally {
    database.close();
  }
}

test('the store offers the lock capability, and its table is created with the schema', () => {
  const filename = tempFile();
  const store = open(filename);
  expect(supportsLocking(store)).toBe(true);
  const database = new Database(filename, { readonly: true });
  expect(database.prepare('SELECT name FROM pragma_table_info(?)').pluck().all('oauthtoken_locks')).toEqual([
    'lock_key',
    'owner',
    'expires_at',
  ]);
  database.close();
});

test('two stores on one file: one holder at a time, over 40 overlapping calls', async () => {
  const filename = tempFile();
  const [first, second] = [open(filename), open(filename)];
  let inside = 0;
  let most = 0;
  let runs = 0;
  const work = async () => {
    inside += 1;
    most = Math.max(most, inside);
    await sleep(2);
    runs += 1;
    inside -= 1;
  };
  await Promise.all(
    Array.from({ length: 40 }, (_, index) => (index % 2 === 0 ? first : second).withLock('shared', work, { waitMs: 60_000 })),
  );
  expect({ most, runs }).toEqual({ most: 1, runs: 40 });
  expect(leaseRows(filename)).toEqual([]);
});

test('the work result and error pass through, and the lease is released either way', async () => {
  const filename = tempFile();
  const store = open(filename);
  await expect(store.withLock('k', async (lock) => `${lock.key} ok`)).resolves.toBe('k ok');
  const failure = new Error('work failed');
  await expect(
    store.withLock('k', async () => {
      throw failure;
    }),
  ).rejects.toBe(failure);
  expect(leaseRows(filename)).toEqual([]);
});

test('LOCK_TIMEOUT while another store holds the key; the work never runs; other keys do not wait', async () => {
  const filename = tempFile();
  const [first, second] = [open(filename), open(filename)];
  const holder = hold(first, 'token-1');
  await holder.held;
  let ran = false;
  const waited = second.withLock(
    'token-1',
    async () => {
      ran = true;
    },
    { waitMs: 300 },
  );
  const error = await waited.catch((caught: unknown) => caught);
  expect(error).toMatchObject({ name: 'TokenStoreError', code: 'LOCK_TIMEOUT', operation: 'withLock' });
  expect(ran).toBe(false);
  await expect(second.withLock('token-2', async () => 'other key', { waitMs: 0 })).resolves.toBe('other key');
  holder.release();
  await expect(holder.done).resolves.toBe('done');
  await expect(second.withLock('token-1', async () => 'free again', { waitMs: 0 })).resolves.toBe('free again');
});

test('stores on two tables of one file, or on two files, do not share locks', async () => {
  const filename = tempFile();
  const holder = hold(open(filename, { table: 'tokens_a' }), 'k');
  await holder.held;
  await expect(open(filename, { table: 'tokens_b' }).withLock('k', async () => 'b', { waitMs: 0 })).resolves.toBe('b');
  await expect(open(tempFile(), { table: 'tokens_a' }).withLock('k', async () => 'other file', { waitMs: 0 })).resolves.toBe('other file');
  expect(await outcome(open(filename, { table: 'tokens_a' }).withLock('k', async () => {}, { waitMs: 0 }))).toBe('LOCK_TIMEOUT');
  holder.release();
  await holder.done;
});

test('keys are hashed: any text up to 512 characters, never stored as it is; keys differing in a lone surrogate stay apart', async () => {
  const filename = tempFile();
  const store = open(filename);
  const hostile = `'); DROP TABLE oauthtoken; --"${'x'.repeat(480)}`;
  const holder = hold(store, hostile);
  await holder.held;
  const [row] = leaseRows(filename);
  expect(row?.lock_key).toMatch(/^[0-9a-f]{64}$/);
  expect(JSON.stringify(leaseRows(filename))).not.toContain('DROP TABLE');
  const surrogate = hold(store, 'user\uD800');
  await surrogate.held;
  await expect(store.withLock('user\uFFFD', async () => 'apart', { waitMs: 0 })).resolves.toBe('apart');
  holder.release();
  surrogate.release();
  await Promise.all([holder.done, surrogate.done]);
  expect(await outcome(store.withLock('x'.repeat(513), async () => {}))).toBe('INVALID_ARGUMENT');
  expect(await outcome(store.withLock('', async () => {}))).toBe('INVALID_ARGUMENT');
  expect(await outcome(store.withLock('k', async () => {}, { leaseMs: 10 }))).toBe('INVALID_ARGUMENT');
  expect(leaseRows(filename)).toEqual([]);
});

describe('owner-checked renewal and release', () => {
  /** Ends every lease in the file now, as if its holder had been frozen past it. */
  function expireLeases(filename: string): void {
    const database = new Database(filename);
    database.prepare('UPDATE oauthtoken_locks SET expires_at = ?').run(Date.now() - 1);
    database.close();
  }

  test('a lease taken over after it ran out: the old holder learns LOCK_LOST, and its release leaves the new owner its row', async () => {
    const filename = tempFile();
    const [first, second] = [open(filename), open(filename)];
    const old = hold(first, 'k', { leaseMs: 60_000 });
    const oldLock = await old.held;
    expireLeases(filename);
    const next = hold(second, 'k', { leaseMs: 60_000, waitMs: 0 });
    const nextLock = await next.held;
    const [taken] = leaseRows(filename);

    expect(await outcome(oldLock.confirm())).toBe('LOCK_LOST');
    expect(oldLock.signal.aborted).toBe(true);
    expect(oldLock.signal.reason).toMatchObject({ code: 'LOCK_LOST', operation: 'withLock' });
    old.release();
    await expect(old.done).resolves.toBe('done');
    // The old holder's release was compare-and-delete: the new owner's row is untouched and still renews.
    expect(leaseRows(filename)).toEqual([taken]);
    await expect(nextLock.confirm()).resolves.toBeUndefined();
    expect(nextLock.signal.aborted).toBe(false);
    expect(await outcome(first.withLock('k', async () => {}, { waitMs: 0 }))).toBe('LOCK_TIMEOUT');
    next.release();
    await next.done;
    expect(leaseRows(filename)).toEqual([]);
  });

  test('a lease that ran out cannot be renewed, even when nobody took it over', async () => {
    const filename = tempFile();
    const holder = hold(open(filename), 'k', { leaseMs: 60_000 });
    const lock = await holder.held;
    expireLeases(filename);
    expect(await outcome(lock.confirm())).toBe('LOCK_LOST');
    holder.release();
    await holder.done;
  });

  test('the holder renews its lease while the work runs: a second store waits past several lease lengths', async () => {
    const filename = tempFile();
    const [first, second] = [open(filename), open(filename)];
    const holder = hold(first, 'k', { leaseMs: 1000 });
    const lock = await holder.held;
    // Renewals move expires_at forward; the lease never runs out while the holder is alive.
    const firstExpiry = leaseRows(filename)[0]?.expires_at as number;
    await sleep(1500);
    expect(leaseRows(filename)[0]?.expires_at).toBeGreaterThan(firstExpiry);
    expect(await outcome(second.withLock('k', async () => {}, { waitMs: 1500 }))).toBe('LOCK_TIMEOUT');
    expect(lock.signal.aborted).toBe(false);
    holder.release();
    await holder.done;
  });
});

test('a process killed while holding the lock: another takes it once the lease has run out, not before', async () => {
  if (!existsSync(join(PACKAGE, 'dist', 'index.js'))) {
    throw new Error('packages/store-sqlite/dist is missing: run `pnpm build` in packages/store-sqlite before these tests');
  }
  const filename = tempFile();
  open(filename); // the schema exists before the child starts
  const child = spawn(process.execPath, [join(PACKAGE, 'test', 'workers', 'lock-worker.mjs'), filename, 'k', '3000'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('locked')) resolve();
    });
    child.once('close', (code) => reject(new Error(`the worker exited with ${code}: ${stderr}`)));
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  const expiresAt = leaseRows(filename)[0]?.expires_at as number;

  const store = open(filename);
  const early = await outcome(store.withLock('k', async () => {}, { waitMs: 0 }));
  if (Date.now() < expiresAt) expect(early).toBe('LOCK_TIMEOUT');
  let acquiredAt = 0;
  await store.withLock(
    'k',
    async () => {
      acquiredAt = Date.now();
    },
    { waitMs: 30_000 },
  );
  expect(acquiredAt).toBeGreaterThan(expiresAt);
  expect(leaseRows(filename)).toEqual([]);
});

describe('closing', () => {
  test('withLock after close() is STORE_CLOSED and runs nothing', async () => {
    const store = open(tempFile());
    await store.close();
    let ran = false;
    expect(
      await outcome(
        store.withLock('k', async () => {
          ran = true;
        }),
      ),
    ).toBe('STORE_CLOSED');
    // Closed comes first, before the arguments are checked.
    expect(await outcome(store.withLock('', null as never))).toBe('STORE_CLOSED');
    expect(ran).toBe(false);
  });

  test('close() while a lock is held resolves, frees the lease for others, and the holder learns LOCK_LOST', async () => {
    const filename = tempFile();
    const store = open(filename);
    const holder = hold(store, 'k', { leaseMs: 60_000 });
    const lock = await holder.held;
    await store.close();
    await expect(open(filename).withLock('k', async () => 'next', { waitMs: 0 })).resolves.toBe('next');
    expect(await outcome(lock.confirm())).toBe('LOCK_LOST');
    holder.release();
    await expect(holder.done).resolves.toBe('done');
  });

  test('a waiter whose store is closed while it waits settles with STORE_CLOSED', async () => {
    const filename = tempFile();
    const holder = hold(open(filename), 'k');
    await holder.held;
    const waiter = open(filename);
    const waiting = outcome(waiter.withLock('k', async () => {}, { waitMs: 30_000 }));
    await sleep(50);
    await waiter.close();
    expect(await waiting).toBe('STORE_CLOSED');
    holder.release();
    await holder.done;
  });
});

describe('createSchema: false', () => {
  test('opens without the lease table; withLock then fails naming the SQL to run, and works once it ran', async () => {
    const filename = tempFile();
    open(filename, { table: 'tokens' });
    const database = new Database(filename);
    database.exec('DROP TABLE tokens_locks');
    const store = open(filename, { table: 'tokens', createSchema: false });
    await store.saveToken(new OAuthToken({ accessToken: 'access' }));
    const error = await store.withLock('k', async () => {}).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'BACKEND_FAILURE', operation: 'withLock' });
    const sql = /create it with: (.*)$/.exec((error as Error).message)?.[1] as string;
    expect(sql).toMatch(/^CREATE TABLE IF NOT EXISTS "tokens_locks"/);
    expect(database.prepare("SELECT COUNT(*) FROM sqlite_master WHERE name = 'tokens_locks'").pluck().get()).toBe(0);
    database.exec(sql);
    database.close();
    await expect(store.withLock('k', async () => 'works')).resolves.toBe('works');
  });

  test('a table named like the lease table but not shaped like it is reported, not used', async () => {
    const filename = tempFile();
    open(filename, { table: 'tokens_locks' }); // a token table whose name is the lease table of `tokens`
    const store = open(filename, { table: 'tokens' });
    const error = await store.withLock('k', async () => {}).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'BACKEND_FAILURE', message: expect.stringContaining('lock_key, owner, expires_at') });
  });
});
