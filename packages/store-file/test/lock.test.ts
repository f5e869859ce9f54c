import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type HeldLock, OAuthToken, supportsLocking, TokenStoreError, type TokenStoreErrorCode, UserSignature } from '@crm/core';
import { FileTokenStore } from '../src/index.js';
import { leaseFilename } from '../src/leases.js';
import { acquireLock, breakStaleLock, type FileLock } from '../src/lock.js';

/**
 * Two processes that found the same lock stale must not both remove it: the later one would remove the lock
 * the first one has created since. These cases put the later one in exactly that position.
 */
let folder: string;
let lockPath: string;
beforeEach(() => {
  folder = mkdtempSync(join(tmpdir(), 'crm-store-file-lock-'));
  lockPath = join(folder, 'sdk_tokens.txt.lock');
});
afterEach(() => rmSync(folder, { recursive: true, force: true }));

/** The lock as a process judging it sees it now. */
const seen = () => ({ content: readFileSync(lockPath, 'utf8'), mtimeMs: statSync(lockPath).mtimeMs });

test('a stale lock that is still as it was judged is removed', () => {
  writeFileSync(lockPath, '{"pid":1,"hostname":"h","createdAt":0,"nonce":"old"}');
  expect(breakStaleLock(lockPath, seen())).toBe(true);
  expect(existsSync(lockPath)).toBe(false);
  expect(existsSync(`${lockPath}.break`)).toBe(false);
});

test('a lock another process created after taking the stale one over is left alone', () => {
  const fresh = '{"pid":2,"hostname":"h","createdAt":1,"nonce":"new"}';
  writeFileSync(lockPath, fresh);
  expect(
    breakStaleLock(lockPath, { content: '{"pid":1,"hostname":"h","createdAt":0,"nonce":"old"}', mtimeMs: statSync(lockPath).mtimeMs }),
  ).toBe(false);
  expect(readFileSync(lockPath, 'utf8')).toBe(fresh);
});

test('a lock its holder renewed after it was judged stale is left alone', () => {
  const stale = '{"owner":"a","pid":1}';
  writeFileSync(lockPath, stale);
  const old = (Date.now() - 60_000) / 1000;
  utimesSync(lockPath, old, old);
  const judged = seen();
  // The holder renews: same content, new mtime.
  utimesSync(lockPath, new Date(), new Date());
  expect(breakStaleLock(lockPath, judged)).toBe(false);
  expect(readFileSync(lockPath, 'utf8')).toBe(stale);
});

test('while another process is breaking the lock (its guard exists), the lock is left to it', () => {
  const stale = '{"pid":1,"hostname":"h","createdAt":0,"nonce":"old"}';
  writeFileSync(lockPath, stale);
  writeFileSync(`${lockPath}.break`, '123');
  expect(breakStaleLock(lockPath, seen())).toBe(false);
  expect(readFileSync(lockPath, 'utf8')).toBe(stale);
  expect(existsSync(`${lockPath}.break`)).toBe(true);
});

test('a guard left by a process killed while breaking is removed once it is old, and the next attempt breaks the lock', () => {
  const stale = '{"pid":1,"hostname":"h","createdAt":0,"nonce":"old"}';
  writeFileSync(lockPath, stale);
  writeFileSync(`${lockPath}.break`, '123');
  const old = (Date.now() - 10_000) / 1000;
  utimesSync(`${lockPath}.break`, old, old);
  expect(breakStaleLock(lockPath, seen())).toBe(false);
  expect(existsSync(`${lockPath}.break`)).toBe(false);
  expect(breakStaleLock(lockPath, seen())).toBe(true);
  expect(existsSync(lockPath)).toBe(false);
});

test('a holder that renews its lock keeps it past the lease; once it stops, the lock is taken over and the holder learns it', async () => {
  // A lease of a second, renewed every 100 ms for 2.5 s: the lock stays the holder's (wide margins for a busy machine).
  const holder = await acquireLock(lockPath, { staleMs: 1_000 }, new AbortController().signal);
  let taken: FileLock | null = null;
  const waiting = acquireLock(lockPath, { staleMs: 1_000 }, new AbortController().signal).then((lock) => {
    taken = lock;
  });
  for (let n = 0; n < 25; n++) {
    await sleep(100);
    expect([holder.refresh(), taken]).toEqual([true, null]);
  }
  await waiting;
  expect(holder.refresh()).toBe(false);
  // Releasing a lock that was taken over leaves the new holder's lock alone.
  holder.release();
  expect(existsSync(lockPath)).toBe(true);
  (taken as FileLock | null)?.release();
  expect(existsSync(lockPath)).toBe(false);
});

test('a wait aborted by its deadline takes no lock afterwards', async () => {
  writeFileSync(lockPath, '{"owner":"ffffffffffffffffffffffffffffffff","pid":1,"pidSpace":null}');
  const deadline = new AbortController();
  const waiting = acquireLock(lockPath, { staleMs: 60_000 }, deadline.signal);
  await sleep(50);
  deadline.abort();
  rmSync(lockPath);
  await expect(waiting).rejects.toThrow();
  await sleep(50);
  expect(existsSync(lockPath)).toBe(false);
});

/**
 * withLock: a lease file per key beside the token file, read and written only under the token file's lock.
 * Every case runs on real files in the folder made above.
 */
describe('withLock', () => {
  const stores: FileTokenStore[] = [];
  const children: ChildProcess[] = [];
  let filename: string;
  beforeEach(() => {
    filename = join(folder, 'sdk_tokens.txt');
  });
  afterEach(async () => {
    for (const child of children.splice(0)) child.kill('SIGKILL');
    for (const store of stores.splice(0)) await store.close();
  });

  const open = (path = filename) => {
    const store = new FileTokenStore({ filename: path });
    stores.push(store);
    return store;
  };

  /** The code of the TokenStoreError `promise` rejects with, or 'resolved'. */
  async function outcome(promise: Promise<unknown>): Promise<TokenStoreErrorCode | 'resolved'> {
    try {
      await promise;
      return 'resolved';
    } catch (error) {
      if (!TokenStoreError.is(error)) throw error;
      expect(error.store).toBe('FileTokenStore');
      return error.code;
    }
  }

  /** A lock held until `release()` is called; `held` resolves with the HeldLock once the work runs. */
  function hold(store: FileTokenStore, key: string, options: { leaseMs?: number; waitMs?: number } = {}) {
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

  /** The names in the folder other than the token file (lease files, leftovers). */
  const besides = () => readdirSync(folder).filter((name) => name !== 'sdk_tokens.txt');
  const lease = (key: string, path = filename) =>
    JSON.parse(readFileSync(leaseFilename(path, key), 'utf8')) as { owner: string; expiresAt: number };

  test('the store offers the lock capability', () => {
    expect(supportsLocking(open())).toBe(true);
  });

  test('two stores on one file: one holder at a time, over 40 overlapping calls; nothing is left behind', async () => {
    const [first, second] = [open(), open()];
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
    expect(besides()).toEqual([]);
  });

  test('the work result and error pass through, and the lease is released either way', async () => {
    const store = open();
    await expect(store.withLock('k', async (lock) => `${lock.key} ok`)).resolves.toBe('k ok');
    const failure = new Error('work failed');
    await expect(
      store.withLock('k', async () => {
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(besides()).toEqual([]);
  });

  test('LOCK_TIMEOUT while another store holds the key; the work never runs; other keys do not wait', async () => {
    const [first, second] = [open(), open()];
    const holder = hold(first, 'token-1');
    await holder.held;
    let ran = false;
    const error = await second
      .withLock(
        'token-1',
        async () => {
          ran = true;
        },
        { waitMs: 300 },
      )
      .catch((caught: unknown) => caught);
    expect(error).toMatchObject({ name: 'TokenStoreError', code: 'LOCK_TIMEOUT', operation: 'withLock' });
    expect(ran).toBe(false);
    await expect(second.withLock('token-2', async () => 'other key', { waitMs: 0 })).resolves.toBe('other key');
    holder.release();
    await expect(holder.done).resolves.toBe('done');
    await expect(second.withLock('token-1', async () => 'free again', { waitMs: 0 })).resolves.toBe('free again');
  });

  test('stores on two token files do not share locks', async () => {
    const holder = hold(open(), 'k');
    await holder.held;
    await expect(open(join(folder, 'other.txt')).withLock('k', async () => 'other file', { waitMs: 0 })).resolves.toBe('other file');
    holder.release();
    await holder.done;
  });

  test('lease files: named by a hash of the key, mode 0600, beside a token file whose tokens and format they leave alone', async () => {
    const store = open();
    const token = new OAuthToken({ userSignature: new UserSignature('ann@example.com:1'), accessToken: 'access-ann' });
    await store.saveToken(token);
    const before = readFileSync(filename, 'utf8');
    const hostile = `../../etc/passwd\0'; ${'x'.repeat(480)}`;
    const holder = hold(store, hostile);
    await holder.held;
    const names = besides();
    expect(names).toEqual([expect.stringMatching(/^sdk_tokens\.txt\.lease-[0-9a-f]{32}$/)]);
    expect(statSync(join(folder, names[0] as string)).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(folder, names[0] as string), 'utf8')).not.toContain('passwd');
    expect((await store.getTokens()).map((stored) => stored.userName)).toEqual(['ann@example.com:1']);
    await store.saveToken(new OAuthToken({ userSignature: new UserSignature('bob@example.com:1'), accessToken: 'access-bob' }));
    expect(readFileSync(filename, 'utf8').startsWith(before)).toBe(true);
    // Keys that differ only in a lone surrogate are two locks.
    const surrogate = hold(store, 'user\uD800');
    await surrogate.held;
    await expect(store.withLock('user\uFFFD', async () => 'apart', { waitMs: 0 })).resolves.toBe('apart');
    holder.release();
    surrogate.release();
    await Promise.all([holder.done, surrogate.done]);
    expect(besides()).toEqual([]);
  });

  test('bad arguments are INVALID_ARGUMENT and create nothing', async () => {
    const store = open();
    expect(await outcome(store.withLock('x'.repeat(513), async () => {}))).toBe('INVALID_ARGUMENT');
    expect(await outcome(store.withLock('', async () => {}))).toBe('INVALID_ARGUMENT');
    expect(await outcome(store.withLock('k', async () => {}, { leaseMs: 10 }))).toBe('INVALID_ARGUMENT');
    expect(await outcome(store.withLock('k', async () => {}, { waitMs: -1 }))).toBe('INVALID_ARGUMENT');
    expect(readdirSync(folder)).toEqual([]);
  });

  test("while the token file's lock stays held, waiting goes on until waitMs: LOCK_TIMEOUT, not BACKEND_UNAVAILABLE", async () => {
    const fileLock = await acquireLock(`${filename}.lock`, { staleMs: 60_000 }, new AbortController().signal);
    const store = new FileTokenStore({ filename, operationTimeoutMs: 200 });
    stores.push(store);
    expect(await outcome(store.withLock('k', async () => {}, { waitMs: 700 }))).toBe('LOCK_TIMEOUT');
    fileLock.release();
    await expect(store.withLock('k', async () => 'after', { waitMs: 0 })).resolves.toBe('after');
  });

  describe('owner-checked renewal and release', () => {
    /** Ends the lease of `key` now, as if its holder had been frozen past it. */
    function expireLease(key: string): void {
      writeFileSync(leaseFilename(filename, key), JSON.stringify({ ...lease(key), expiresAt: Date.now() - 1 }));
    }

    test('a lease taken over after it ran out: the old holder learns LOCK_LOST, and its release leaves the new owner its file', async () => {
      const [first, second] = [open(), open()];
      const old = hold(first, 'k', { leaseMs: 60_000 });
      const oldLock = await old.held;
      expireLease('k');
      const next = hold(second, 'k', { leaseMs: 60_000, waitMs: 0 });
      const nextLock = await next.held;
      const taken = lease('k');

      expect(await outcome(oldLock.confirm())).toBe('LOCK_LOST');
      expect(oldLock.signal.aborted).toBe(true);
      expect(oldLock.signal.reason).toMatchObject({ code: 'LOCK_LOST', operation: 'withLock' });
      old.release();
      await expect(old.done).resolves.toBe('done');
      // The old holder's release compared owners: the new owner's lease is untouched and still renews.
      expect(lease('k')).toEqual(taken);
      await expect(nextLock.confirm()).resolves.toBeUndefined();
      expect(nextLock.signal.aborted).toBe(false);
      expect(await outcome(first.withLock('k', async () => {}, { waitMs: 0 }))).toBe('LOCK_TIMEOUT');
      next.release();
      await next.done;
      expect(besides()).toEqual([]);
    });

    test('a lease that ran out cannot be renewed, even when nobody took it over', async () => {
      const holder = hold(open(), 'k', { leaseMs: 60_000 });
      const lock = await holder.held;
      expireLease('k');
      expect(await outcome(lock.confirm())).toBe('LOCK_LOST');
      holder.release();
      await holder.done;
    });

    test('a lease file that is not one of ours holds no lock: it is taken over', async () => {
      writeFileSync(leaseFilename(filename, 'k'), 'not a lease');
      await expect(open().withLock('k', async () => 'taken', { waitMs: 0 })).resolves.toBe('taken');
    });

    test('the holder renews its lease while the work runs: a second store waits past several lease lengths', async () => {
      const [first, second] = [open(), open()];
      const holder = hold(first, 'k', { leaseMs: 1000 });
      const lock = await holder.held;
      const firstExpiry = lease('k').expiresAt;
      await sleep(1500);
      expect(lease('k').expiresAt).toBeGreaterThan(firstExpiry);
      expect(await outcome(second.withLock('k', async () => {}, { waitMs: 1500 }))).toBe('LOCK_TIMEOUT');
      expect(lock.signal.aborted).toBe(false);
      holder.release();
      await holder.done;
    });
  });

  test('a process killed while holding the lock: another takes it once the lease has run out, not before', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'workers', 'lock-holder.ts'), filename, 'k', '3000'], {
      cwd: join(__dirname, '..'),
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
    const { expiresAt } = lease('k');

    const store = open();
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
    expect(besides()).toEqual([]);
  });

  describe('closing', () => {
    test('withLock after close() is STORE_CLOSED and runs nothing', async () => {
      const store = open();
      await store.close();
      let ran = false;
      expect(
        await outcome(
          store.withLock('k', async () => {
            ran = true;
          }),
        ),
      ).toBe('STORE_CLOSED');
      expect(await outcome(store.withLock('', null as never))).toBe('STORE_CLOSED');
      expect(ran).toBe(false);
      expect(readdirSync(folder)).toEqual([]);
    });

    test('close() while a lock is held resolves, frees the lease for others, and the holder learns LOCK_LOST', async () => {
      const store = open();
      const holder = hold(store, 'k', { leaseMs: 60_000 });
      const lock = await holder.held;
      await store.close();
      expect(besides()).toEqual([]);
      await expect(open().withLock('k', async () => 'next', { waitMs: 0 })).resolves.toBe('next');
      expect(await outcome(lock.confirm())).toBe('LOCK_LOST');
      holder.release();
      await expect(holder.done).resolves.toBe('done');
    });

    test('a waiter whose store is closed while it waits settles with STORE_CLOSED', async () => {
      const holder = hold(open(), 'k');
      await holder.held;
      const waiter = open();
      const waiting = outcome(waiter.withLock('k', async () => {}, { waitMs: 30_000 }));
      await sleep(50);
      await waiter.close();
      expect(await waiting).toBe('STORE_CLOSED');
      holder.release();
      await holder.done;
    });
  });
});
