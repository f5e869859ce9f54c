import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { type HeldLock, OAuthToken, supportsLocking, TokenStoreError, UserSignature } from '@crm/core';
import { freePort } from '@crm/test-services/process';
import { startThrowawayRedis } from '@crm/test-services/redis';
import { type Cluster, Redis } from 'ioredis';
import { RedisTokenStore } from '../src/index.js';
import { createConformanceOptions, newClusterClient, randomPrefix, redisUrl, removePrefix } from './conformance-options.js';

const WORKER = join(__dirname, 'workers', 'lock-holder.ts');
// Timers and process start-up on a loaded two-core machine are late; these bound waits, they time nothing.
const SLACK_MS = 5000;

/** The lock's key in Redis, computed here independently of the store. */
const lockKeyOf = (prefix: string, key: string) => `{${prefix}}:lock:${createHash('sha256').update(key, 'utf16le').digest('hex')}`;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A promise and the function that resolves it. */
function gate(): { opened: Promise<void>; open(): void } {
  let open = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

/** The code of a TokenStoreError a promise rejects with ('resolved' when it does not reject). */
async function codeOf(pending: Promise<unknown>): Promise<string> {
  try {
    await pending;
    return 'resolved';
  } catch (error) {
    if (!TokenStoreError.is(error)) throw error;
    expect(error.operation).toBe('withLock');
    return error.code;
  }
}

/** Starts a worker holding `key`; resolves once it printed `locked`. */
async function startHolder(
  storage: unknown,
  key: string,
  leaseMs: number,
): Promise<{ child: ChildProcessWithoutNullStreams; line(): Promise<string> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, JSON.stringify({ storage, key, leaseMs })], {
    cwd: join(__dirname, '..'),
    stdio: 'pipe',
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const lines: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    const next = waiting.shift();
    if (next) next(line);
    else lines.push(line);
  });
  // 'close', not 'exit': at 'exit' its last lines may still be unread.
  const exited = new Promise<string>((resolve) => child.once('close', (code, signal) => resolve(`exited (${code ?? signal}) ${stderr}`)));
  const line = () =>
    lines.length > 0 ? Promise.resolve(lines.shift()!) : Promise.race([new Promise<string>((resolve) => waiting.push(resolve)), exited]);
  expect(await line()).toBe('locked');
  return { child, line };
}

describe.each(['standalone', 'cluster'] as const)('withLock (%s)', (target) => {
  const options = createConformanceOptions(target);
  let raw: Redis | Cluster;
  const stores: RedisTokenStore[] = [];
  const prefixes = new Set<string>();

  /** A store on its own connection; closed and its prefix removed after the test. */
  async function open(prefix: string): Promise<RedisTokenStore> {
    prefixes.add(prefix);
    const store = await options.openShared!(await options.share!({ prefix } as RedisTokenStore));
    stores.push(store);
    return store;
  }

  beforeAll(async () => {
    raw = target === 'cluster' ? await newClusterClient() : new Redis(await redisUrl());
  });
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.close()));
    for (const prefix of prefixes) await removePrefix(raw, prefix);
    prefixes.clear();
  });
  afterAll(async () => {
    await raw.quit();
  });

  test('the store declares the capability', async () => {
    expect(supportsLocking(await open(randomPrefix()))).toBe(true);
  });

  test('two store objects on one prefix never hold a key at once, and every work runs', async () => {
    const prefix = randomPrefix();
    const [a, b] = [await open(prefix), await open(prefix)];
    let inside = 0;
    let mostInside = 0;
    let runs = 0;
    const work = async () => {
      inside++;
      mostInside = Math.max(mostInside, inside);
      await sleep(5);
      runs++;
      inside--;
      return runs;
    };
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).withLock('user@example.com:1', work, { waitMs: 60_000 })));
    expect(runs).toBe(20);
    expect(mostInside).toBe(1);
    expect(await raw.exists(lockKeyOf(prefix, 'user@example.com:1'))).toBe(0);
  });

  test('withLock passes the work result and error through, and releases in both cases', async () => {
    const prefix = randomPrefix();
    const store = await open(prefix);
    expect(await store.withLock('k', async (lock) => lock.key)).toBe('k');
    await expect(store.withLock('k', async () => Promise.reject(new Error('work failed')))).rejects.toThrow('work failed');
    expect(await raw.exists(lockKeyOf(prefix, 'k'))).toBe(0);
  });

  test('locks of two prefixes are independent, and different keys never wait for each other', async () => {
    const prefix = randomPrefix();
    const [a, sameStorage, otherPrefix] = [await open(prefix), await open(prefix), await open(randomPrefix())];
    const release = gate();
    const held = gate();
    const holding = a.withLock('k', async () => {
      held.open();
      await release.opened;
    });
    await held.opened;
    expect(await otherPrefix.withLock('k', async () => 'other prefix', { waitMs: 0 })).toBe('other prefix');
    expect(await sameStorage.withLock('another key', async () => 'another key', { waitMs: 0 })).toBe('another key');
    expect(await codeOf(sameStorage.withLock('k', async () => 'same key', { waitMs: 0 }))).toBe('LOCK_TIMEOUT');
    release.open();
    await holding;
  });

  test('LOCK_TIMEOUT when the holder keeps the lock for the whole wait; the work never runs', async () => {
    const prefix = randomPrefix();
    const [a, b] = [await open(prefix), await open(prefix)];
    const release = gate();
    const held = gate();
    const holding = a.withLock('k', async () => {
      held.open();
      await release.opened;
    });
    await held.opened;
    let ran = false;
    const error = await b
      .withLock(
        'k',
        async () => {
          ran = true;
        },
        { waitMs: 300 },
      )
      .catch((caught: unknown) => caught);
    expect(TokenStoreError.is(error) && error.code).toBe('LOCK_TIMEOUT');
    expect(ran).toBe(false);
    release.open();
    await holding;
    // Once released, the waiter gets it.
    expect(await b.withLock('k', async () => 'after', { waitMs: 0 })).toBe('after');
  });

  test('the holder renews its lease while the work runs longer than the lease', async () => {
    const prefix = randomPrefix();
    const [a, b] = [await open(prefix), await open(prefix)];
    const release = gate();
    const held = gate();
    const holding = a.withLock(
      'k',
      async (lock) => {
        held.open();
        await release.opened;
        await lock.confirm();
        return lock.signal.aborted;
      },
      { leaseMs: 1500 },
    );
    await held.opened;
    await sleep(4000);
    expect(await codeOf(b.withLock('k', async () => 'b', { waitMs: 0 }))).toBe('LOCK_TIMEOUT');
    expect(await raw.pttl(lockKeyOf(prefix, 'k'))).toBeGreaterThan(0);
    release.open();
    expect(await holding).toBe(false);
  });

  test('renewal and release check the owner: a holder whose lease ran out can neither extend nor free the next holder', async () => {
    const prefix = randomPrefix();
    const [a, b] = [await open(prefix), await open(prefix)];
    const lockKey = lockKeyOf(prefix, 'k');
    const taken = gate();
    const done = gate();
    let oldHolder: HeldLock | undefined;
    const holding = a.withLock(
      'k',
      async (lock) => {
        oldHolder = lock;
        taken.open();
        await done.opened;
        return lock.confirm();
      },
      { leaseMs: 60_000 },
    );
    await taken.opened;
    const firstOwner = await raw.get(lockKey);
    expect(firstOwner).toMatch(/^[0-9a-f]{32}$/);
    // The lease runs out (as it would for a holder frozen longer than the lease), and another owner takes it.
    await raw.pexpire(lockKey, 1);
    const newHolderIn = gate();
    const newHolderDone = gate();
    const newHolding = b.withLock(
      'k',
      async (lock) => {
        newHolderIn.open();
        await newHolderDone.opened;
        await lock.confirm();
        return 'new holder kept it';
      },
      { waitMs: SLACK_MS, leaseMs: 60_000 },
    );
    await newHolderIn.opened;
    const secondOwner = await raw.get(lockKey);
    expect(secondOwner).toMatch(/^[0-9a-f]{32}$/);
    expect(secondOwner).not.toBe(firstOwner);

    // The old holder's confirm() renews: the script finds another owner, so LOCK_LOST, and its signal aborts.
    done.open();
    expect(await codeOf(holding)).toBe('LOCK_LOST');
    expect(oldHolder!.signal.aborted).toBe(true);
    expect(TokenStoreError.is(oldHolder!.signal.reason) && oldHolder!.signal.reason.code).toBe('LOCK_LOST');
    // Its release ran (withLock settled) and left the new owner's lock, with the new owner's lease.
    expect(await raw.get(lockKey)).toBe(secondOwner);
    expect(await raw.pttl(lockKey)).toBeGreaterThan(30_000);
    newHolderDone.open();
    expect(await newHolding).toBe('new holder kept it');
    expect(await raw.exists(lockKey)).toBe(0);
  });

  test('a lock key is hashed under the prefix: glob characters and 512 characters are fine, longer or empty is INVALID_ARGUMENT', async () => {
    const prefix = randomPrefix();
    const store = await open(prefix);
    const long = `*?[]\\{}${'x'.repeat(505)}`;
    expect(long).toHaveLength(512);
    const seen = await store.withLock(long, async () => raw.exists(lockKeyOf(prefix, long)));
    expect(seen).toBe(1);
    for (const bad of ['', 'x'.repeat(513)]) {
      expect(await codeOf(store.withLock(bad, async () => 'ran'))).toBe('INVALID_ARGUMENT');
    }
    expect(await codeOf(store.withLock('k', async () => 'ran', { leaseMs: 10 }))).toBe('INVALID_ARGUMENT');
  });

  test('deleteTokens and getTokens leave lock keys alone', async () => {
    const prefix = randomPrefix();
    const store = await open(prefix);
    const lockKey = lockKeyOf(prefix, 'user@example.com:1');
    const result = await store.withLock('user@example.com:1', async (lock) => {
      const owner = await raw.get(lockKey);
      for (let i = 0; i < 3; i++) {
        await store.saveToken(new OAuthToken({ userSignature: new UserSignature(`u${i}@example.com:1`), accessToken: `a${i}` }));
      }
      expect(await store.getTokens()).toHaveLength(3);
      await store.deleteTokens();
      expect(await store.getTokens()).toEqual([]);
      expect(await raw.get(lockKey)).toBe(owner);
      await lock.confirm();
      return lock.signal.aborted;
    });
    expect(result).toBe(false);
  });

  test('a SIGKILLed holder process: another store gets the lock once the lease ends', async () => {
    const prefix = randomPrefix();
    const store = await open(prefix);
    const leaseMs = 1500;
    const holder = await startHolder(await options.share!(store), 'k', leaseMs);
    try {
      expect(await codeOf(store.withLock('k', async () => 'too early', { waitMs: 0 }))).toBe('LOCK_TIMEOUT');
      holder.child.kill('SIGKILL');
      expect(await store.withLock('k', async () => 'taken over', { waitMs: leaseMs + SLACK_MS, leaseMs })).toBe('taken over');
    } finally {
      holder.child.kill('SIGKILL');
    }
  });

  test('a frozen holder loses the lock after its lease; woken, its confirm() is LOCK_LOST and its release leaves the new lock', async () => {
    const prefix = randomPrefix();
    const store = await open(prefix);
    const lockKey = lockKeyOf(prefix, 'k');
    const leaseMs = 1000;
    const holder = await startHolder(await options.share!(store), 'k', leaseMs);
    try {
      holder.child.kill('SIGSTOP');
      const woken = gate();
      const newHolding = store.withLock(
        'k',
        async (lock) => {
          const owner = await raw.get(lockKey);
          holder.child.kill('SIGCONT');
          holder.child.stdin.write('confirm\n');
          expect(await holder.line()).toBe('confirm LOCK_LOST');
          expect(await holder.line()).toBe('aborted true');
          expect(await holder.line()).toBe('released');
          woken.open();
          // The old holder released and closed: this holder's lock is untouched and still confirms.
          expect(await raw.get(lockKey)).toBe(owner);
          await lock.confirm();
          return 'kept';
        },
        { waitMs: leaseMs + SLACK_MS, leaseMs: 60_000 },
      );
      expect(await newHolding).toBe('kept');
      await woken.opened;
    } finally {
      holder.child.kill('SIGCONT');
      holder.child.kill('SIGKILL');
    }
  });

  test('withLock after close() is STORE_CLOSED, whatever the arguments', async () => {
    const store = await open(randomPrefix());
    await store.close();
    for (const key of ['k', '', 42]) {
      expect(await codeOf(store.withLock(key as string, async () => 'ran'))).toBe('STORE_CLOSED');
    }
  });

  test('close() while a lock is held resolves, frees the lock for others, and the holder then learns LOCK_LOST', async () => {
    const prefix = randomPrefix();
    const [a, b] = [await open(prefix), await open(prefix)];
    const held = gate();
    const closed = gate();
    const holding = a.withLock('k', async (lock) => {
      held.open();
      await closed.opened;
      await lock.confirm();
    });
    await held.opened;
    await a.close();
    expect(await b.withLock('k', async () => 'free', { waitMs: 0 })).toBe('free');
    closed.open();
    expect(await codeOf(holding)).toBe('LOCK_LOST');
  });
});

describe('withLock when Redis does not answer in time (a throwaway server of this test)', () => {
  test('a SET NX whose reply came too late is BACKEND_UNAVAILABLE, and the lock it took is freed rather than left for its lease', async () => {
    const server = await startThrowawayRedis();
    const raw = new Redis(server.url);
    const store = new RedisTokenStore({ url: server.url, prefix: 'late-lock', operationTimeoutMs: 500 });
    try {
      await store.migrate(); // connected, scripts loaded
      // Writes wait on the server: the SET is sent, times out here, and runs once the pause ends.
      await raw.client('PAUSE', 1500, 'WRITE');
      expect(await codeOf(store.withLock('k', async () => 'ran', { waitMs: 0, leaseMs: 60_000 }))).toBe('BACKEND_UNAVAILABLE');
      await sleep(1500);
      // After the pause: the SET ran, then the release the store sent behind it.
      expect(await raw.exists(lockKeyOf('late-lock', 'k'))).toBe(0);
      expect(await store.withLock('k', async () => 'ran', { waitMs: 0 })).toBe('ran');
    } finally {
      await store.close();
      await raw.quit();
      await server.destroy();
    }
  });
});

describe('withLock when Redis is not reachable', () => {
  test('BACKEND_UNAVAILABLE within the operation timeout, with operation withLock', async () => {
    const store = new RedisTokenStore({ url: `redis://127.0.0.1:${await freePort()}`, prefix: randomPrefix(), operationTimeoutMs: 500 });
    try {
      const error = await store.withLock('k', async () => 'ran', { waitMs: 60_000 }).catch((caught: unknown) => caught);
      expect(TokenStoreError.is(error) && [error.code, error.operation]).toEqual(['BACKEND_UNAVAILABLE', 'withLock']);
    } finally {
      await store.close();
    }
  });
});
