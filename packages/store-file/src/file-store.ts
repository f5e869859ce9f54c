import {
  type BigIntStats,
  closeSync,
  fstatSync,
  fsyncSync,
  futimesSync,
  openSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import {
  type HeldLock,
  type LockOptions,
  type OAuthToken,
  type TokenLocking,
  type TokenStore,
  TokenStoreError,
  type TokenStoreOperation,
} from '@crm/core';
import * as kit from '@crm/core/store-kit';
import { decodeTokenFile, formatTokenFile, formatTokenLine, readTokenEntries, STORE_NAME, type TokenEntry } from './csv.js';
import { leaseFilename, readLease, removeIfPresent, writeLease } from './leases.js';
import { acquireLock, type FileLock } from './lock.js';

export interface FileTokenStoreOptions {
  /** The token file. Default `sdk_tokens.txt` (Zoho's name), resolved against the working directory once, here. */
  filename?: string;
  /** How long a change waits for another process's lock before failing with BACKEND_UNAVAILABLE. Default 5000 ms. */
  operationTimeoutMs?: number;
  /** The lock's lease: a lock its holder has not renewed for this long is taken over. Default 10000 ms. */
  staleLockMs?: number;
}

export const DEFAULT_FILENAME = 'sdk_tokens.txt';
// The lease is far above what one change takes (about a second for 100,000 tokens): a holder that is slow,
// not dead, keeps its lock.
const DEFAULT_STALE_LOCK_MS = 10_000;
const OPTION_NAMES = ['filename', 'operationTimeoutMs', 'staleLockMs'];
const RENAMED_OPTIONS = { path: 'filename', lockTimeoutMs: 'operationTimeoutMs' };
/** Linux gives up after 40 links too (ELOOP). */
const MAX_LINKS = 40;

/** A `withLock` lease this store holds: its file and this acquisition's owner token. */
interface HeldLease {
  path: string;
  owner: string;
}

/** The fields a snapshot can look tokens up by. */
type IndexedField = 'id' | kit.LookupKey['field'];

/** The file as last read or written by this store, with its lookups. */
interface Snapshot {
  /** Size, mtime (ns) and inode of the file these entries came from; null for a missing file. */
  version: string | null;
  /** mtime of that file, to keep our own writes' mtimes increasing. */
  mtimeNs: bigint;
  /** Tokens in file order, each with its CSV line once formatted. */
  entries: TokenEntry[];
  /** Per field, the first entry in file order holding each value (Zoho's FileStore returns the first match). */
  indexes: Partial<Record<IndexedField, Map<string, TokenEntry>>>;
}

function fileVersion(stats: BigIntStats): string {
  return `${stats.size}:${stats.mtimeNs}:${stats.ino}`;
}

function fieldValue(token: OAuthToken, field: IndexedField): string | null {
  return field === 'userName' ? token.userName : token[field];
}

/** The index of one field, built on first use: most callers only ever look tokens up by user name. */
function indexOf(snapshot: Snapshot, field: IndexedField): Map<string, TokenEntry> {
  let index = snapshot.indexes[field];
  if (index === undefined) {
    index = new Map();
    for (const entry of snapshot.entries) {
      const value = fieldValue(entry.token, field);
      if (value !== null && !index.has(value)) index.set(value, entry);
    }
    snapshot.indexes[field] = index;
  }
  return index;
}

function indexEntry(snapshot: Snapshot, entry: TokenEntry): void {
  for (const [field, index] of Object.entries(snapshot.indexes) as Array<[IndexedField, Map<string, TokenEntry>]>) {
    const value = fieldValue(entry.token, field);
    if (value !== null && !index.has(value)) index.set(value, entry);
  }
}

function unindexEntry(snapshot: Snapshot, entry: TokenEntry): void {
  for (const [field, index] of Object.entries(snapshot.indexes) as Array<[IndexedField, Map<string, TokenEntry>]>) {
    const value = fieldValue(entry.token, field);
    if (value !== null && index.get(value) === entry) index.delete(value);
  }
}

function buildSnapshot(version: string | null, mtimeNs: bigint, entries: TokenEntry[]): Snapshot {
  return { version, mtimeNs, entries, indexes: {} };
}

/** A file system error as a TokenStoreError; the message names the condition, a safe copy of the error is the `cause`. */
function fileSystemError(error: unknown, operation: TokenStoreOperation, secrets: string[] = []): TokenStoreError {
  if (TokenStoreError.is(error)) return error;
  const code = kit.driverErrorCode(error);
  const reasons: Record<string, string> = {
    ENOENT: "the token file's folder does not exist",
    ENOTDIR: "a part of the token file's path is not a folder",
    EACCES: 'permission denied on the token file, its lock or its folder',
    EPERM: 'permission denied on the token file, its lock or its folder',
    EROFS: 'the token file is on a read-only file system',
    ENOSPC: 'no space left for the token file',
    EDQUOT: 'disk quota exceeded writing the token file',
    EFBIG: 'the token file grew beyond the size the system allows',
    EISDIR: 'the token file, its lock or its temporary file is a folder',
  };
  const reason = reasons[code] ?? `file system error${code ? ` ${code}` : ''}`;
  return TokenStoreError.failure({ store: STORE_NAME, operation, cause: error, secrets }, reason);
}

/**
 * The file `filename` names once symbolic links are followed, also when the last link dangles (its target is
 * created by the first save). Writing at the link would replace it with a regular file, and a store on the
 * link and one on the target would then use different files and different locks.
 */
function resolveFilename(filename: string): string {
  let path = resolve(filename);
  for (let links = 0; links <= MAX_LINKS; links++) {
    // The folder's links first: a relative link target is relative to the folder the link really is in.
    path = join(realFolder(dirname(path)), basename(path));
    let target: string;
    try {
      target = readlinkSync(path);
    } catch {
      return path; // not a link (or not there yet): this is the file
    }
    path = resolve(dirname(path), target);
  }
  throw TokenStoreError.invalidArgument(
    { store: STORE_NAME, operation: 'open' },
    `filename leads through more than ${MAX_LINKS} symbolic links`,
  );
}

/** The folder with its links resolved, or as given when it does not exist (operations then report that). */
function realFolder(folder: string): string {
  try {
    return realpathSync(folder);
  } catch {
    return folder;
  }
}

/**
 * Changes waiting per token file in this process, shared by every store over that file. Kept on globalThis so
 * that the ESM and CommonJS builds (or two versions) loaded in one process share it too.
 */
const QUEUES_KEY = Symbol.for('@crm/store-file/changeQueues');
const changeQueues: Map<string, Promise<void>> = ((globalThis as Record<symbol, unknown>)[QUEUES_KEY] as
  | Map<string, Promise<void>>
  | undefined) ?? new Map();
(globalThis as Record<symbol, unknown>)[QUEUES_KEY] = changeQueues;

/**
 * Zoho CRM OAuth tokens in Zoho's FileStore CSV file. Every change is a locked read-modify-write that
 * replaces the file atomically (temporary file, fsync, rename, fsync of the folder); lookups use an
 * in-memory index that is rebuilt only when the file changed on disk. `withLock` keeps one lease file per
 * key beside the token file (src/leases.ts).
 */
export class FileTokenStore implements TokenStore, TokenLocking {
  /** The token file: absolute, with symbolic links resolved. */
  readonly filename: string;
  readonly lockFilename: string;
  private readonly operationTimeoutMs: number;
  private readonly staleLockMs: number;
  private snapshot: Snapshot | null = null;
  /** This store's last queued change, for close(). */
  private lastChange: Promise<void> = Promise.resolve();
  /** withLock leases taken and not yet released, which close() releases. */
  private readonly leases = new Set<HeldLease>();
  private closed = false;

  constructor(options: FileTokenStoreOptions = {}) {
    kit.checkOptionsObject(options, STORE_NAME);
    const invalid = (message: string) => TokenStoreError.invalidArgument({ store: STORE_NAME, operation: 'open' }, message);
    kit.checkOptionNames(options, OPTION_NAMES, STORE_NAME, RENAMED_OPTIONS);
    const { filename = DEFAULT_FILENAME } = options;
    if (typeof filename !== 'string' || filename.length === 0 || filename.includes('\0')) {
      throw invalid('filename must be a non-empty string without NUL');
    }
    this.operationTimeoutMs = kit.operationTimeoutOption(options.operationTimeoutMs, STORE_NAME);
    this.staleLockMs = kit.positiveIntegerOption(options.staleLockMs, 'staleLockMs', DEFAULT_STALE_LOCK_MS, STORE_NAME);
    this.filename = resolveFilename(filename);
    this.lockFilename = `${this.filename}.lock`;
  }

  async findToken(token: OAuthToken): Promise<OAuthToken | null> {
    this.checkOpen('findToken');
    kit.checkTokenArgument(token, STORE_NAME, 'findToken');
    const key = kit.lookupKey(token);
    if (key === null) return null;
    const stored = indexOf(this.current('findToken'), key.field).get(key.value);
    return stored === undefined ? null : kit.fillAbsentFields(token, stored.token);
  }

  async findTokenById(id: string): Promise<OAuthToken | null> {
    this.checkOpen('findTokenById');
    kit.checkIdArgument(id, STORE_NAME, 'findTokenById');
    return indexOf(this.current('findTokenById'), 'id').get(id)?.token.clone() ?? null;
  }

  async getTokens(): Promise<OAuthToken[]> {
    this.checkOpen('getTokens');
    return this.current('getTokens').entries.map((entry) => entry.token.clone());
  }

  async saveToken(token: OAuthToken): Promise<void> {
    this.checkOpen('saveToken');
    kit.checkSaveArgument(token, STORE_NAME);
    const input = token.clone();
    await this.change('saveToken', kit.tokenSecrets(input), (snapshot, lock) => {
      const lookup = {
        findById: (id: string) => indexOf(snapshot, 'id').get(id)?.token ?? null,
        findByKey: (key: kit.LookupKey) => indexOf(snapshot, key.field).get(key.value)?.token ?? null,
      };
      const plan = kit.planSave(lookup, input, STORE_NAME);
      const stored: TokenEntry = { token: plan.stored, line: null };
      const replaced = plan.replaces === null ? undefined : snapshot.entries.findIndex((entry) => entry.token === plan.replaces);
      const entries = snapshot.entries.slice();
      if (replaced === undefined) entries.push(stored);
      else entries[replaced] = stored;
      this.commit(snapshot, entries, lock, 'saveToken');
      if (replaced !== undefined) unindexEntry(snapshot, snapshot.entries[replaced] as TokenEntry);
      snapshot.entries = entries;
      indexEntry(snapshot, stored);
      kit.copyStoredFields(token, plan.stored);
    });
  }

  async deleteToken(id: string): Promise<void> {
    this.checkOpen('deleteToken');
    kit.checkIdArgument(id, STORE_NAME, 'deleteToken');
    await this.change('deleteToken', [], (snapshot, lock) => {
      if (!indexOf(snapshot, 'id').has(id)) return;
      const entries = snapshot.entries.filter((entry) => entry.token.id !== id);
      this.commit(snapshot, entries, lock, 'deleteToken');
      this.snapshot = buildSnapshot(snapshot.version, snapshot.mtimeNs, entries);
    });
  }

  async deleteTokens(): Promise<void> {
    this.checkOpen('deleteTokens');
    await this.change('deleteTokens', [], (snapshot, lock) => {
      // Zoho's FileStore keeps the file with its header; so does this store.
      if (snapshot.version !== null && snapshot.entries.length === 0) return;
      this.commit(snapshot, [], lock, 'deleteTokens');
      this.snapshot = buildSnapshot(snapshot.version, snapshot.mtimeNs, []);
    });
  }

  /**
   * Runs `work` holding the lock on `key` across every store, thread and process using this token file (see
   * `TokenLocking` in `@crm/core`). The lease is the file `<filename>.lease-<hash of key>`; a holder that dies
   * stops renewing it, and the next taker takes it over once its `expiresAt` has passed.
   */
  async withLock<T>(key: string, work: (lock: HeldLock) => Promise<T>, options?: LockOptions): Promise<T> {
    this.checkOpen('withLock');
    return kit.runWithLease(STORE_NAME, key, work, options, (checkedKey, leaseMs) => this.tryAcquire(checkedKey, leaseMs));
  }

  /**
   * Refuses every later call, releases the withLock leases still held (their holders cannot write through this
   * store any more) and waits for the changes already queued. The store holds no descriptor, lock or timer
   * between calls, so nothing else is left to release.
   */
  async close(): Promise<void> {
    this.closed = true;
    const held = [...this.leases];
    this.leases.clear();
    // Best effort: a lease that cannot be removed ends by itself.
    await Promise.all(held.map((lease) => this.releaseLease(lease).catch(() => {})));
    await this.lastChange;
    this.snapshot = null;
  }

  private checkOpen(operation: TokenStoreOperation): void {
    if (this.closed) throw TokenStoreError.closed({ store: STORE_NAME, operation });
  }

  /** The file's current content: the cached snapshot if size, mtime and inode are unchanged, else a fresh read. */
  private current(operation: TokenStoreOperation): Snapshot {
    try {
      const stats = statSync(this.filename, { bigint: true, throwIfNoEntry: false });
      if (stats === undefined) {
        if (this.snapshot?.version !== null) this.snapshot = buildSnapshot(null, 0n, []);
        return this.snapshot as Snapshot;
      }
      if (this.snapshot !== null && this.snapshot.version === fileVersion(stats)) return this.snapshot;
      // Stat and read the same open file, so the version always describes the bytes read.
      const fd = openSync(this.filename, 'r');
      try {
        const opened = fstatSync(fd, { bigint: true });
        const entries = readTokenEntries(decodeTokenFile(readFileSync(fd), operation), operation);
        this.snapshot = buildSnapshot(fileVersion(opened), opened.mtimeNs, entries);
        return this.snapshot;
      } finally {
        closeSync(fd);
      }
    } catch (error) {
      throw fileSystemError(error, operation);
    }
  }

  /** One attempt: under the token file's lock, takes the lease if there is none or it ran out. */
  private async tryAcquire(key: string, leaseMs: number): Promise<kit.Lease | null> {
    this.checkOpen('withLock'); // the kit polls: a store closed while waiting stops the wait
    const lease: HeldLease = { path: leaseFilename(this.filename, key), owner: kit.newLockOwner() };
    let taken: boolean;
    try {
      taken = await this.locked('withLock', [], (lock) => {
        const now = Date.now();
        const current = readLease(lease.path);
        if (current !== null && current.expiresAt >= now) return false;
        writeLease(lease.path, { owner: lease.owner, expiresAt: now + leaseMs }, () => this.keepLock(lock, 'withLock'));
        return true;
      });
    } catch (error) {
      // The token file's lock stayed held for operationTimeoutMs (by a frozen process, until staleLockMs frees
      // it): this attempt could not look, and nothing was written. The caller asked to wait up to waitMs, so
      // the wait goes on rather than failing.
      if (TokenStoreError.is(error) && error.code === 'BACKEND_UNAVAILABLE') return null;
      throw error;
    }
    if (!taken) return null;
    if (this.closed) {
      // close() ran while this attempt waited for the token file's lock and did not see this lease.
      await this.releaseLease(lease).catch(() => {});
      throw TokenStoreError.closed({ store: STORE_NAME, operation: 'withLock' });
    }
    this.leases.add(lease);
    return {
      renew: async (ms) => {
        if (this.closed || !this.leases.has(lease)) return false;
        return this.locked('withLock', [], (lock) => {
          const now = Date.now();
          const current = readLease(lease.path);
          // Compare-and-expire: only this owner's lease, and only while it has not run out.
          if (current === null || current.owner !== lease.owner || current.expiresAt < now) return false;
          writeLease(lease.path, { owner: lease.owner, expiresAt: now + ms }, () => this.keepLock(lock, 'withLock'));
          return true;
        });
      },
      release: async () => {
        if (this.leases.delete(lease)) await this.releaseLease(lease);
      },
    };
  }

  /** Compare-and-delete: removes the lease file only while it still names this owner. */
  private releaseLease(lease: HeldLease): Promise<void> {
    return this.locked('withLock', [], () => {
      if (readLease(lease.path)?.owner === lease.owner) removeIfPresent(lease.path);
    });
  }

  /**
   * Runs a change under both locks: the in-process queue (so parallel calls in one process never interleave)
   * and the lock file (so processes never do). The change sees the file as it is now, after any other
   * process's write, and everything from that read to the rename runs without awaiting.
   */
  private change(operation: TokenStoreOperation, secrets: string[], apply: (snapshot: Snapshot, lock: FileLock) => void): Promise<void> {
    return this.locked(operation, secrets, (lock) => {
      const snapshot = this.current(operation);
      // Reading a large file takes a while: renew the lease before the next step.
      this.keepLock(lock, operation);
      apply(snapshot, lock);
    });
  }

  /**
   * Runs `body` under the in-process queue of this token file and its lock file. `body` is synchronous, so
   * nothing else in this thread runs between its read and its write.
   */
  private locked<T>(operation: TokenStoreOperation, secrets: string[], body: (lock: FileLock) => T): Promise<T> {
    const run = async () => {
      let lock: FileLock;
      try {
        lock = await kit.withDeadline(
          { timeoutMs: this.operationTimeoutMs, store: STORE_NAME, operation, backend: `the lock file ${this.lockFilename}` },
          (signal) =>
            acquireLock(this.lockFilename, { staleMs: this.staleLockMs, onStaleLockBroken: (owner) => this.removeTempFile(owner) }, signal),
        );
      } catch (error) {
        throw fileSystemError(error, operation);
      }
      try {
        return body(lock);
      } catch (error) {
        throw fileSystemError(error, operation, secrets);
      } finally {
        try {
          lock.release();
        } catch {
          // A lock we cannot remove goes stale and is taken over; the change itself is done.
        }
      }
    };
    const previous = changeQueues.get(this.filename) ?? Promise.resolve();
    const result = previous.then(run);
    const settled = result.then(
      () => {},
      () => {},
    );
    changeQueues.set(this.filename, settled);
    this.lastChange = settled;
    void settled.then(() => {
      if (changeQueues.get(this.filename) === settled) changeQueues.delete(this.filename);
    });
    return result;
  }

  /** Renews the lock's lease; fails the change when another process has taken the lock over meanwhile. */
  private keepLock(lock: FileLock, operation: TokenStoreOperation): void {
    if (!lock.refresh()) {
      throw TokenStoreError.unavailable(
        { store: STORE_NAME, operation },
        `the lock on the token file was not renewed within its lease (staleLockMs ${this.staleLockMs}) and was taken over; nothing was changed`,
      );
    }
  }

  /** The temporary file of a lock holder, named by its lock's owner id (pids repeat across containers). */
  private tempFilename(owner: string): string {
    return `${this.filename}.${owner}.tmp`;
  }

  /** Removes the temporary file a dead lock holder left beside the token file. */
  private removeTempFile(owner: string | null): void {
    if (owner === null) return;
    try {
      unlinkSync(this.tempFilename(owner));
    } catch {
      // Usually there is none; a leftover is harmless, and the change goes ahead.
    }
  }

  /**
   * Writes `entries` to a temporary file beside the token file, flushes it, renews the lock, renames the
   * file over the token file and flushes the folder: a crash leaves the old file or the new one, never a mix.
   * Sets the snapshot's version to the new file's, so the next lookup does not re-read what was just written;
   * the caller then updates its entries.
   */
  private commit(snapshot: Snapshot, entries: TokenEntry[], lock: FileLock, operation: TokenStoreOperation): void {
    for (const entry of entries) entry.line ??= formatTokenLine(entry.token);
    const text = formatTokenFile(entries.map((entry) => entry.line as string));
    const tempFilename = this.tempFilename(lock.owner);
    let renamed = false;
    try {
      const fd = openSync(tempFilename, 'wx', 0o600);
      let written: BigIntStats;
      try {
        writeFileSync(fd, text);
        written = fstatSync(fd, { bigint: true });
        // Another store may hold the old file's version; a new file with a recycled inode, the same size and
        // the same coarse mtime would look unchanged to it. Keeping mtimes increasing rules that out.
        if (written.mtimeNs <= snapshot.mtimeNs) {
          const seconds = Number(snapshot.mtimeNs / 1000n + 1000n) / 1e6;
          futimesSync(fd, seconds, seconds);
          written = fstatSync(fd, { bigint: true });
        }
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      this.keepLock(lock, operation);
      renameSync(tempFilename, this.filename);
      renamed = true;
      syncFolder(dirname(this.filename));
      snapshot.version = fileVersion(written);
      snapshot.mtimeNs = written.mtimeNs;
    } finally {
      if (!renamed) {
        try {
          unlinkSync(tempFilename);
        } catch {}
      }
    }
  }
}

/** Makes the rename durable. Some platforms cannot fsync a folder; the rename is still atomic there. */
function syncFolder(folder: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(folder, 'r');
    fsyncSync(fd);
  } catch (error) {
    if (!['EISDIR', 'EINVAL', 'EPERM', 'EBADF'].includes(kit.driverErrorCode(error))) throw error;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
