/**
 * The cross-process lock: a file `<token file>.lock` created with O_EXCL and held across a whole
 * read-modify-write of the token file.
 *
 * Its identity is a random owner id, never the pid: two containers on one host can both run as pid 1.
 * The holder refreshes the lock's mtime at each step of its change (see `FileLock.refresh`); a lock not
 * refreshed within the lease (`staleMs`) is stale, whoever holds it. A lock is also taken over at once when
 * its holder is certainly dead: it ran under this boot of this kernel and in this PID namespace (only there
 * does its pid mean the same process as ours would), and that pid is gone, or it is our own thread (same pid
 * and same `threadId`) while that thread does not hold it. A lock of another worker thread of this process is
 * alive as long as this process is: threads do not share `ownersHere` (each has its own globalThis), so only
 * the lease frees the lock of a worker thread that was terminated while holding it.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, futimesSync, lstatSync, openSync, readFileSync, readlinkSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { threadId } from 'node:worker_threads';
import { driverErrorCode } from '@crm/core/store-kit';

export interface LockSettings {
  /** The lease: a lock whose mtime is older than this is stale, whoever holds it. */
  staleMs: number;
  /** Called after a stale lock was removed, with its owner id (null for a lock in an unknown format). */
  onStaleLockBroken?: (owner: string | null) => void;
}

/** What a lock file says about its holder. `hostname` is only for people reading the file. */
interface LockHolder {
  owner: string;
  pid: number;
  /** The holder's PID namespace on its kernel's boot (`pidSpace()`), or null where that is unknown. */
  pidSpace: string | null;
  /**
   * The holder's thread in its process (`threadId` of node:worker_threads, 0 for the main thread), or null in a
   * lock written by an older version of this package: such a lock with our pid is judged by the lease alone.
   */
  threadId: number | null;
  hostname: string;
  createdAt: number;
}

/** A lock this process holds. */
export interface FileLock {
  /** The random id in the lock file; also names this holder's temporary file. */
  readonly owner: string;
  /**
   * Marks the lock as alive now (sets its mtime) and returns true, or returns false when another process
   * took it over as stale in the meantime: then the holder must not commit. The whole hold is one
   * synchronous stretch, so no timer could refresh it; the holder calls this between its long steps.
   */
  refresh(): boolean;
  release(): void;
}

/**
 * A lock file that is still empty is one whose creator died between creating and writing it (microseconds
 * apart), unless it is younger than this.
 */
const EMPTY_LOCK_GRACE_MS = 1000;
/** The guard that makes breaking a stale lock a single decision is held for three system calls. */
const BREAK_GUARD_STALE_MS = 2000;

/**
 * Owner ids of the locks this thread holds now. Kept on globalThis so that every copy of this module in the
 * thread (ESM and CommonJS builds) agrees. Each worker thread has its own globalThis, hence its own set: that
 * is why a lock names its holder's thread as well as its pid.
 */
const HELD_KEY = Symbol.for('@crm/store-file/lockOwnersHere');
const ownersHere: Set<string> = ((globalThis as Record<symbol, unknown>)[HELD_KEY] as Set<string> | undefined) ?? new Set();
(globalThis as Record<symbol, unknown>)[HELD_KEY] = ownersHere;

let cachedPidSpace: string | null | undefined;

/**
 * This process's PID namespace on this boot of this kernel (`<boot id>/pid:[<inode>]`): two processes
 * can compare pids only when theirs are equal. null without /proc (then only the lease frees a lock).
 */
export function pidSpace(): string | null {
  if (cachedPidSpace === undefined) {
    try {
      const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
      cachedPidSpace = `${bootId}/${readlinkSync('/proc/self/ns/pid')}`;
    } catch {
      cachedPidSpace = null;
    }
  }
  return cachedPidSpace;
}

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if (driverErrorCode(error) === 'ENOENT') return null;
    throw error;
  }
}

function parseHolder(content: string): LockHolder | null {
  try {
    const holder = JSON.parse(content) as Partial<LockHolder>;
    // The owner id names a temporary file to remove: accept only what acquireLock writes.
    if (
      typeof holder.owner === 'string' &&
      /^[0-9a-f]{32}$/.test(holder.owner) &&
      Number.isInteger(holder.pid) &&
      (holder.pid as number) > 0
    ) {
      return {
        ...(holder as LockHolder),
        pidSpace: typeof holder.pidSpace === 'string' ? holder.pidSpace : null,
        threadId: Number.isInteger(holder.threadId) && (holder.threadId as number) >= 0 ? (holder.threadId as number) : null,
      };
    }
  } catch {}
  return null;
}

/** True unless the process is known to be gone (EPERM means it exists under another user). */
function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return driverErrorCode(error) === 'EPERM';
  }
}

/**
 * True only when the holder's pid is comparable with ours and its process is gone, or it is this very thread
 * (same pid and same thread) and this thread does not hold that lock. Another thread of this process is alive
 * while we are, and its locks are not in our `ownersHere`: its lock is left to the lease.
 */
function isCertainlyDead(holder: LockHolder): boolean {
  if (holder.pidSpace === null || holder.pidSpace !== pidSpace()) return false;
  if (holder.pid !== process.pid) return !isProcessAlive(holder.pid);
  return holder.threadId === threadId && !ownersHere.has(holder.owner);
}

/** Creates `path` only if absent, with `content`; returns its open descriptor, or null if it exists. */
function createExclusive(path: string, content: string): number | null {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (error) {
    if (driverErrorCode(error) === 'EEXIST') return null;
    throw error;
  }
  try {
    writeSync(fd, content);
  } catch (error) {
    closeSync(fd);
    unlinkSync(path);
    throw error;
  }
  return fd;
}

/** A lock file as one process saw it: the holder renews it by setting its mtime, the content stays. */
export interface LockState {
  content: string;
  mtimeMs: number;
}

function readLock(lockPath: string): LockState | null {
  const content = readOrNull(lockPath);
  if (content === null) return null;
  try {
    return { content, mtimeMs: lstatSync(lockPath).mtimeMs };
  } catch (error) {
    if (driverErrorCode(error) === 'ENOENT') return null;
    throw error;
  }
}

/** The lock at `lockPath` if it is stale, null if it is live or gone. */
function staleLock(lockPath: string, staleMs: number): LockState | null {
  const lock = readLock(lockPath);
  if (lock === null) return null;
  const ageMs = Date.now() - lock.mtimeMs;
  if (lock.content === '') return ageMs > Math.min(staleMs, EMPTY_LOCK_GRACE_MS) ? lock : null;
  // A lock in another format (an older version of this package) is judged by the lease alone.
  const holder = parseHolder(lock.content);
  return ageMs > staleMs || (holder !== null && isCertainlyDead(holder)) ? lock : null;
}

/**
 * Removes the lock if it is still exactly as judged stale: same content, not renewed since. Two processes
 * that both found the lock stale must not both remove it (the second would remove the new lock the first
 * just created), and a holder that renewed its lock in the meantime keeps it. So the check and the removal
 * happen under a short-lived guard file, and only the first to get the guard still sees the stale lock.
 */
export function breakStaleLock(lockPath: string, stale: LockState): boolean {
  const guardPath = `${lockPath}.break`;
  const guard = createExclusive(guardPath, String(process.pid));
  if (guard === null) {
    // A guard left by a process killed inside those three calls would block everyone: drop it when old.
    try {
      if (Date.now() - lstatSync(guardPath).mtimeMs > BREAK_GUARD_STALE_MS) unlinkSync(guardPath);
    } catch (error) {
      if (driverErrorCode(error) !== 'ENOENT') throw error;
    }
    return false;
  }
  closeSync(guard);
  try {
    const now = readLock(lockPath);
    if (now === null || now.content !== stale.content || now.mtimeMs !== stale.mtimeMs) return false;
    unlinkSync(lockPath);
    return true;
  } finally {
    unlinkSync(guardPath);
  }
}

/**
 * Waits for and takes the lock, polling with a short growing delay (file locks have no wake-up signal),
 * until `signal` aborts: the caller's deadline (`withDeadline`). File system errors are the caller's to map.
 */
export async function acquireLock(lockPath: string, settings: LockSettings, signal: AbortSignal): Promise<FileLock> {
  let delayMs = 1;
  for (;;) {
    // Checked right before the attempt, in the same synchronous stretch: a lock is never taken after the deadline.
    if (signal.aborted) throw new Error('the lock wait was abandoned at its deadline');
    const owner = randomBytes(16).toString('hex');
    const holder: LockHolder = {
      owner,
      pid: process.pid,
      pidSpace: pidSpace(),
      threadId,
      hostname: hostname(),
      createdAt: Date.now(),
    };
    const content = JSON.stringify(holder);
    const fd = createExclusive(lockPath, content);
    if (fd !== null) {
      ownersHere.add(owner);
      return {
        owner,
        refresh: () => {
          if (readOrNull(lockPath) !== content) return false;
          // Through our own descriptor: if the lock was replaced since the read, this touches only our old file.
          const now = Date.now() / 1000;
          futimesSync(fd, now, now);
          return true;
        },
        release: () => {
          ownersHere.delete(owner);
          closeSync(fd);
          // Never remove a lock another process took over after ours went stale.
          if (readOrNull(lockPath) === content) unlinkSync(lockPath);
        },
      };
    }
    const stale = staleLock(lockPath, settings.staleMs);
    if (stale !== null && breakStaleLock(lockPath, stale)) {
      settings.onStaleLockBroken?.(parseHolder(stale.content)?.owner ?? null);
      continue;
    }
    // Aborting clears the timer too: a store closed after a lock timeout leaves nothing keeping the process alive.
    await sleep(delayMs + Math.random() * delayMs, undefined, { signal });
    delayMs = Math.min(delayMs * 2, 25);
  }
}
