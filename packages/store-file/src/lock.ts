/**
 * The cross-process lock: a file `<token file>.lock` created with O_EXCL, holding the holder's pid,
 * host name and start time, held across a whole read-modify-write of the token file.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, lstatSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { TokenStoreError, type TokenStoreOperation } from '@crm/core';
import { STORE } from './csv.js';

export interface LockSettings {
  /** How long to wait for another holder before giving up with BACKEND_UNAVAILABLE. */
  timeoutMs: number;
  /** A lock older than this is abandoned, whoever holds it. */
  staleMs: number;
  /** Called after a stale lock was removed, with its holder's pid when that holder ran on this host. */
  onStaleLockBroken?: (localHolderPid: number | null) => void;
}

/** What a lock file says about its holder. */
interface LockHolder {
  pid: number;
  hostname: string;
  createdAt: number;
}

/** A lock this process holds. */
export interface HeldLock {
  /** False once another process has taken the lock over as stale: then the holder must not commit. */
  stillHeld(): boolean;
  release(): void;
}

/**
 * A lock file whose content cannot be read is one whose creator died between creating and writing it
 * (microseconds apart), unless it is younger than this.
 */
const UNREADABLE_LOCK_GRACE_MS = 1000;
/** The guard that makes breaking a stale lock a single decision is held for three system calls. */
const BREAK_GUARD_STALE_MS = 2000;

/**
 * Contents of the locks this process holds now: a lock naming this pid that is not among them was left by an
 * earlier process with the same pid (a container restarted under the same host name runs as pid 1 again).
 * Kept on globalThis so that every copy of this module in the process (ESM and CommonJS builds) agrees.
 */
const HELD_KEY = Symbol.for('@crm/store-file/locksHeldHere');
const locksHeldHere: Set<string> = ((globalThis as Record<symbol, unknown>)[HELD_KEY] as Set<string> | undefined) ?? new Set();
(globalThis as Record<symbol, unknown>)[HELD_KEY] = locksHeldHere;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null ? (error as NodeJS.ErrnoException).code : undefined;
}

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return null;
    throw error;
  }
}

function parseHolder(content: string): LockHolder | null {
  try {
    const holder = JSON.parse(content) as Partial<LockHolder>;
    if (
      Number.isInteger(holder.pid) &&
      (holder.pid as number) > 0 &&
      typeof holder.hostname === 'string' &&
      typeof holder.createdAt === 'number'
    ) {
      return holder as LockHolder;
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
    return errorCode(error) === 'EPERM';
  }
}

/** Creates `path` only if absent, with `content`. False if it exists. */
function createExclusive(path: string, content: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (error) {
    if (errorCode(error) === 'EEXIST') return false;
    throw error;
  }
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
  return true;
}

/** The content of the lock at `lockPath` if it is stale, null if it is live or gone. */
function staleLockContent(lockPath: string, staleMs: number): string | null {
  const content = readOrNull(lockPath);
  if (content === null) return null;
  const holder = parseHolder(content);
  if (holder === null) {
    let modifiedAt: number;
    try {
      modifiedAt = lstatSync(lockPath).mtimeMs;
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return null;
      throw error;
    }
    return Date.now() - modifiedAt > Math.min(staleMs, UNREADABLE_LOCK_GRACE_MS) ? content : null;
  }
  const sameHost = holder.hostname === hostname();
  const deadHolder = sameHost && (holder.pid === process.pid ? !locksHeldHere.has(content) : !isProcessAlive(holder.pid));
  return deadHolder || Date.now() - holder.createdAt > staleMs ? content : null;
}

/**
 * Removes the lock if it still holds `staleContent`. Two processes that both found the lock stale must not
 * both remove it: the second would remove the new lock the first just created. So the check and the removal
 * happen under a short-lived guard file, and only the first to get the guard still sees the stale content.
 */
export function breakStaleLock(lockPath: string, staleContent: string): boolean {
  const guardPath = `${lockPath}.break`;
  if (!createExclusive(guardPath, String(process.pid))) {
    // A guard left by a process killed inside those three calls would block everyone: drop it when old.
    try {
      if (Date.now() - lstatSync(guardPath).mtimeMs > BREAK_GUARD_STALE_MS) unlinkSync(guardPath);
    } catch (error) {
      if (errorCode(error) !== 'ENOENT') throw error;
    }
    return false;
  }
  try {
    if (readOrNull(lockPath) !== staleContent) return false;
    unlinkSync(lockPath);
    return true;
  } finally {
    unlinkSync(guardPath);
  }
}

/**
 * Waits for and takes the lock. Polls with a short growing delay: file locks have no wake-up signal.
 * Throws BACKEND_UNAVAILABLE after `timeoutMs`; file system errors are left to the caller to map.
 */
export async function acquireLock(lockPath: string, settings: LockSettings, operation: TokenStoreOperation): Promise<HeldLock> {
  const deadline = Date.now() + settings.timeoutMs;
  let delayMs = 1;
  for (;;) {
    const content = JSON.stringify({
      pid: process.pid,
      hostname: hostname(),
      createdAt: Date.now(),
      nonce: randomBytes(8).toString('hex'),
    });
    if (createExclusive(lockPath, content)) {
      locksHeldHere.add(content);
      return {
        stillHeld: () => readOrNull(lockPath) === content,
        release: () => {
          locksHeldHere.delete(content);
          // Never remove a lock another process took over after ours went stale.
          if (readOrNull(lockPath) === content) unlinkSync(lockPath);
        },
      };
    }
    const staleContent = staleLockContent(lockPath, settings.staleMs);
    if (staleContent !== null && breakStaleLock(lockPath, staleContent)) {
      const holder = parseHolder(staleContent);
      settings.onStaleLockBroken?.(holder !== null && holder.hostname === hostname() ? holder.pid : null);
      continue;
    }
    if (Date.now() >= deadline) {
      throw TokenStoreError.unavailable(
        { store: STORE, operation },
        `the token file stayed locked by another process for ${settings.timeoutMs} ms (lock file ${lockPath})`,
      );
    }
    await sleep(delayMs + Math.random() * delayMs);
    delayMs = Math.min(delayMs * 2, 25);
  }
}
