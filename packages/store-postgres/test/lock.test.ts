import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { TokenStoreError } from '@crm/core';
import pg from 'pg';
import { PostgresTokenStore } from '../src/index.js';
import { lockIds } from '../src/sql.js';
import { adminQuery, dropTable, errorCode, postgresUrl, randomTable, TEST_SCHEMA } from './conformance-options.js';

let url: string;
const tables: string[] = [];
const stores: PostgresTokenStore[] = [];
const children: ChildProcess[] = [];

beforeAll(async () => {
  url = await postgresUrl();
});

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    }
  }
  await Promise.all(stores.splice(0).map((store) => store.close()));
});

afterAll(async () => {
  for (const table of tables) await dropTable(url, TEST_SCHEMA, table);
});

function openStore(table = randomTable(), options: { pool?: pg.Pool } = {}): PostgresTokenStore {
  if (!tables.includes(table)) tables.push(table);
  const store = options.pool
    ? new PostgresTokenStore({ pool: options.pool, schema: TEST_SCHEMA, table })
    : new PostgresTokenStore({ url, schema: TEST_SCHEMA, table });
  stores.push(store);
  return store;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A promise and the function that resolves it. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

/** A worker process holding the lock (test/workers/lock-worker.ts), and its stdout as JSON lines. */
async function holdInChild(table: string, key: string, leaseMs: number) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(__dirname, 'workers', 'lock-worker.ts'), url, TEST_SCHEMA, table, key, String(leaseMs)],
    { cwd: join(__dirname, '..'), stdio: ['pipe', 'pipe', 'inherit'] },
  );
  children.push(child);
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<Record<string, unknown>> => {
    const line = await lines.next();
    if (line.done) throw new Error('the lock worker ended early');
    return JSON.parse(line.value) as Record<string, unknown>;
  };
  expect(await next()).toEqual({ held: true });
  return { child, next, tell: (line: string) => child.stdin.write(`${line}\n`) };
}

/** Whether `store` can take the lock right now (waitMs 0), and so nobody else holds it. */
async function isFree(store: PostgresTokenStore, key: string): Promise<boolean> {
  try {
    return await store.withLock(key, async () => true, { waitMs: 0 });
  } catch (error) {
    if (TokenStoreError.is(error) && error.code === 'LOCK_TIMEOUT') return false;
    throw error;
  }
}

test('two store objects on one table: one holder at a time, the other waits and then runs', async () => {
  const table = randomTable();
  const [first, second] = [openStore(table), openStore(table)];
  const events: string[] = [];
  const held = gate();
  const letGo = gate();
  const firstRun = first.withLock('user@x:1', async (lock) => {
    events.push('first in');
    await lock.confirm();
    held.open();
    await letGo.opened;
    events.push('first out');
    return 'first';
  });
  await held.opened;
  expect(await errorCode(second.withLock('user@x:1', async () => 'never', { waitMs: 0 }))).toBe('LOCK_TIMEOUT');
  const secondRun = second.withLock('user@x:1', async () => {
    events.push('second in');
    return 'second';
  });
  await sleep(300);
  expect(events).toEqual(['first in']);
  letGo.open();
  expect(await Promise.all([firstRun, secondRun])).toEqual(['first', 'second']);
  expect(events).toEqual(['first in', 'first out', 'second in']);
});

test('different keys, and one key on two tables, never wait for each other', async () => {
  const table = randomTable();
  const [store, sameTable, otherTable] = [openStore(table), openStore(table), openStore()];
  await store.withLock('key', async () => {
    expect(await sameTable.withLock('another key', async () => 'ran', { waitMs: 0 })).toBe('ran');
    expect(await otherTable.withLock('key', async () => 'ran', { waitMs: 0 })).toBe('ran');
    expect(await errorCode(sameTable.withLock('key', async () => 'never', { waitMs: 0 }))).toBe('LOCK_TIMEOUT');
  });
});

test('LOCK_TIMEOUT after waitMs, the work never runs; the holder is undisturbed', async () => {
  const table = randomTable();
  const [holder, waiter] = [openStore(table), openStore(table)];
  let ran = false;
  await holder.withLock('k', async (lock) => {
    const error = await waiter
      .withLock(
        'k',
        async () => {
          ran = true;
        },
        { waitMs: 300 },
      )
      .catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'LOCK_TIMEOUT', operation: 'withLock', store: 'PostgresTokenStore' });
    await expect(lock.confirm()).resolves.toBeUndefined();
  });
  expect(ran).toBe(false);
});

test('keys of any text up to 512 characters; longer or empty is INVALID_ARGUMENT', async () => {
  const store = openStore();
  const hostile = ["'; DROP TABLE x; --", '$1', 'ü'.repeat(512), '\u0000nul', 'a b\nc'];
  for (const key of hostile) expect(await store.withLock(key, async (lock) => lock.key)).toBe(key);
  expect(await errorCode(store.withLock('x'.repeat(513), async () => 1))).toBe('INVALID_ARGUMENT');
  expect(await errorCode(store.withLock('', async () => 1))).toBe('INVALID_ARGUMENT');
});

test('the work result and error pass through, and the lock is free afterwards', async () => {
  const store = openStore();
  expect(await store.withLock('k', async () => 42)).toBe(42);
  const failure = new Error('work failed');
  await expect(store.withLock('k', async () => Promise.reject(failure))).rejects.toBe(failure);
  expect(await isFree(store, 'k')).toBe(true);
});

test('a holder process killed with SIGKILL frees the lock at once (its session ends), not after its lease', async () => {
  const table = randomTable();
  const store = openStore(table);
  const worker = await holdInChild(table, 'shared key', 120000);
  expect(await isFree(store, 'shared key')).toBe(false);
  worker.child.kill('SIGKILL');
  // Well inside the child's 120 s lease: only the end of its session can have freed it.
  expect(await store.withLock('shared key', async () => 'taken', { waitMs: 30000 })).toBe('taken');
}, 60000);

test('a frozen holder (SIGSTOP) loses the lock after its lease; woken, its confirm() is LOCK_LOST and its release frees nothing', async () => {
  const table = randomTable();
  const store = openStore(table);
  const worker = await holdInChild(table, 'frozen', 1500);
  worker.tell('confirm');
  expect(await worker.next()).toEqual({ confirm: 'ok' });
  worker.child.kill('SIGSTOP');
  expect(await isFree(store, 'frozen')).toBe(false);
  await store.withLock(
    'frozen',
    async (lock) => {
      worker.child.kill('SIGCONT');
      worker.tell('confirm');
      expect(await worker.next()).toEqual({ confirm: 'LOCK_LOST' });
      worker.tell('release');
      expect(await worker.next()).toEqual({ released: true });
      // The woken holder let go of what it no longer had: this holder still has it.
      await expect(lock.confirm()).resolves.toBeUndefined();
      expect(await isFree(openStore(table), 'frozen')).toBe(false);
    },
    { waitMs: 30000 },
  );
}, 60000);

test('the server ending the holding session aborts the holder signal with LOCK_LOST', async () => {
  const table = randomTable();
  const store = openStore(table);
  const [classId, objId] = lockIds(TEST_SCHEMA, table, 'k');
  const lost = await store.withLock(
    'k',
    async (lock) => {
      const rows = await adminQuery<{ pid: number }>(
        url,
        `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::int4::oid AND objid = $2::int4::oid AND objsubid = 2 AND granted`,
        [classId, objId],
      );
      expect(rows).toHaveLength(1);
      await adminQuery(url, 'SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
      await new Promise((resolve) => lock.signal.addEventListener('abort', resolve, { once: true }));
      await expect(lock.confirm()).rejects.toMatchObject({ code: 'LOCK_LOST' });
      return lock.signal.reason as TokenStoreError;
    },
    { leaseMs: 1500 },
  );
  expect(lost).toMatchObject({ code: 'LOCK_LOST', operation: 'withLock' });
  expect(await isFree(openStore(table), 'k')).toBe(true);
});

test('with your own pool: the lock takes one of its connections for the hold and gives it back; the pool stays open', async () => {
  const pool = new pg.Pool({ connectionString: url, max: 3 });
  try {
    const table = randomTable();
    const store = openStore(table, { pool });
    const other = openStore(table);
    await store.withLock('k', async () => {
      expect(pool.totalCount - pool.idleCount).toBe(1);
      expect(await isFree(other, 'k')).toBe(false);
    });
    expect(pool.totalCount - pool.idleCount).toBe(0);
    await store.close();
    expect((await pool.query<{ one: number }>('SELECT 1 AS one')).rows[0]?.one).toBe(1);
  } finally {
    await pool.end();
  }
});

test('withLock after close() is STORE_CLOSED; close() while a lock is held resolves and the holder loses it', async () => {
  const table = randomTable();
  const store = openStore(table);
  const held = gate();
  let signal: AbortSignal | undefined;
  const running = store.withLock(
    'k',
    async (lock) => {
      signal = lock.signal;
      held.open();
      await new Promise((resolve) => lock.signal.addEventListener('abort', resolve, { once: true }));
      return (lock.signal.reason as TokenStoreError).code;
    },
    { leaseMs: 1500 },
  );
  await held.opened;
  await store.close();
  expect(await running).toBe('LOCK_LOST');
  expect(signal?.aborted).toBe(true);
  expect(await errorCode(store.withLock('k', async () => 1))).toBe('STORE_CLOSED');
  expect(await errorCode(store.withLock('', async () => 1))).toBe('STORE_CLOSED');
  // Its connection is gone: the lock is free for others.
  expect(await isFree(openStore(table), 'k')).toBe(true);
});

test('a waiter whose store is closed while it waits stops with STORE_CLOSED', async () => {
  const table = randomTable();
  const [holder, waiter] = [openStore(table), openStore(table)];
  await holder.withLock('k', async () => {
    const waiting = waiter.withLock('k', async () => 'never', { waitMs: 30000 });
    await sleep(200);
    await waiter.close();
    expect(await errorCode(waiting)).toBe('STORE_CLOSED');
  });
});

test('an unreachable server is BACKEND_UNAVAILABLE within the operation timeout', async () => {
  const store = new PostgresTokenStore({ url: 'postgres://postgres@127.0.0.1:1/test', operationTimeoutMs: 1000 });
  stores.push(store);
  const error = await store.withLock('k', async () => 1, { waitMs: 0 }).catch((caught: unknown) => caught);
  expect(error).toMatchObject({ code: 'BACKEND_UNAVAILABLE', operation: 'withLock' });
});
