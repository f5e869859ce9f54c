import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { breakStaleLock } from '../src/lock.js';

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

test('a stale lock that still holds what was judged stale is removed', () => {
  writeFileSync(lockPath, '{"pid":1,"hostname":"h","createdAt":0,"nonce":"old"}');
  expect(breakStaleLock(lockPath, '{"pid":1,"hostname":"h","createdAt":0,"nonce":"old"}')).toBe(true);
  expect(existsSync(lockPath)).toBe(false);
  expect(existsSync(`${lockPath}.break`)).toBe(false);
});

test('a lock another process created after taking the stale one over is left alone', () => {
  const fresh = '{"pid":2,"hostname":"h","createdAt":1,"nonce":"new"}';
  writeFileSync(lockPath, fresh);
  expect(breakStaleLock(lockPath, '{"pid":1,"hostname":"h","createdAt":0,"nonce":"old"}')).toBe(false);
  expect(readFileSync(lockPath, 'utf8')).toBe(fresh);
});

test('while another process is breaking the lock (its guard exists), the lock is left to it', () => {
  const stale = '{"pid":1,"hostname":"h","createdAt":0,"nonce":"old"}';
  writeFileSync(lockPath, stale);
  writeFileSync(`${lockPath}.break`, '123');
  expect(breakStaleLock(lockPath, stale)).toBe(false);
  expect(readFileSync(lockPath, 'utf8')).toBe(stale);
  expect(existsSync(`${lockPath}.break`)).toBe(true);
});

test('a guard left by a process killed while breaking is removed once it is old, and the next attempt breaks the lock', () => {
  const stale = '{"pid":1,"hostname":"h","createdAt":0,"nonce":"old"}';
  writeFileSync(lockPath, stale);
  writeFileSync(`${lockPath}.break`, '123');
  const old = (Date.now() - 10_000) / 1000;
  utimesSync(`${lockPath}.break`, old, old);
  expect(breakStaleLock(lockPath, stale)).toBe(false);
  expect(existsSync(`${lockPath}.break`)).toBe(false);
  expect(breakStaleLock(lockPath, stale)).toBe(true);
  expect(existsSync(lockPath)).toBe(false);
});
