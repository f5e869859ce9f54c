import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { acquireLock, breakStaleLock, type HeldLock } from '../src/lock.js';

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
  let taken: HeldLock | null = null;
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
  (taken as HeldLock | null)?.release();
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
