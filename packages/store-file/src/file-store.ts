import { randomBytes } from 'node:crypto';
import {
  type BigIntStats,
  closeSync,
  fstatSync,
  fsyncSync,
  futimesSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { type OAuthToken, type TokenStore, TokenStoreError, type TokenStoreOperation } from '@crm/core';
import {
  checkIdArgument,
  checkSaveArgument,
  checkTokenArgument,
  copyStoredFields,
  fillAbsentFields,
  type LookupKey,
  lookupKey,
  planSave,
} from '@crm/core/store-kit';
import { formatTokenFile, formatTokenLine, readTokenEntries, STORE, type TokenEntry } from './csv.js';
import { acquireLock, type HeldLock } from './lock.js';

export interface FileTokenStoreOptions {
  /** The token file. Default `sdk_tokens.txt` (Zoho's name), resolved against the working directory once, here. */
  path?: string;
  /** How long a change waits for another process's lock before failing with BACKEND_UNAVAILABLE. Default 10000 ms. */
  lockTimeoutMs?: number;
  /** A lock older than this is taken over even if its holder may be alive (another host, a hung process). Default 30000 ms. */
  staleLockMs?: number;
}

export const DEFAULT_PATH = 'sdk_tokens.txt';
const DEFAULT_LOCK_TIMEOUT_MS = 10_000;
const DEFAULT_STALE_LOCK_MS = 30_000;

/** The fields a snapshot can look tokens up by. */
type IndexedField = 'id' | LookupKey['field'];

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

function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null ? (error as NodeJS.ErrnoException).code : undefined;
}

/** A file system error as a TokenStoreError; the message names the condition, the original stays as `cause`. */
function fileSystemError(error: unknown, operation: TokenStoreOperation): TokenStoreError {
  if (TokenStoreError.is(error)) return error;
  const code = errorCode(error);
  const reasons: Record<string, string> = {
    ENOENT: "the token file's folder does not exist",
    ENOTDIR: "a part of the token file's path is not a folder",
    EACCES: 'permission denied on the token file, its lock or its folder',
    EPERM: 'permission denied on the token file, its lock or its folder',
    EROFS: 'the token file is on a read-only file system',
    ENOSPC: 'no space left for the token file',
    EDQUOT: 'disk quota exceeded writing the token file',
    EISDIR: 'the token file path is a folder',
  };
  const reason = (code && reasons[code]) ?? `file system error${code ? ` ${code}` : ''}`;
  return TokenStoreError.failure({ store: STORE, operation, cause: error }, reason);
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
 * in-memory index that is rebuilt only when the file changed on disk.
 */
export class FileTokenStore implements TokenStore {
  /** The absolute path of the token file. */
  readonly path: string;
  readonly lockPath: string;
  private readonly lockTimeoutMs: number;
  private readonly staleLockMs: number;
  private snapshot: Snapshot | null = null;
  /** This store's last queued change, for close(). */
  private lastChange: Promise<void> = Promise.resolve();

  constructor(options: FileTokenStoreOptions = {}) {
    const invalid = (message: string) => TokenStoreError.invalidArgument({ store: STORE, operation: 'open' }, message);
    if (typeof options !== 'object' || options === null) throw invalid('options must be an object');
    const { path = DEFAULT_PATH, lockTimeoutMs = DEFAULT_LOCK_TIMEOUT_MS, staleLockMs = DEFAULT_STALE_LOCK_MS } = options;
    if (typeof path !== 'string' || path.length === 0) throw invalid('path must be a non-empty string');
    for (const [name, value] of [
      ['lockTimeoutMs', lockTimeoutMs],
      ['staleLockMs', staleLockMs],
    ] as const) {
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw invalid(`${name} must be a number of milliseconds >= 0`);
    }
    this.path = resolve(path);
    this.lockPath = `${this.path}.lock`;
    this.lockTimeoutMs = lockTimeoutMs;
    this.staleLockMs = staleLockMs;
  }

  async findToken(token: OAuthToken): Promise<OAuthToken | null> {
    checkTokenArgument(token, STORE, 'findToken');
    const key = lookupKey(token);
    if (key === null) return null;
    const stored = indexOf(this.current('findToken'), key.field).get(key.value);
    return stored === undefined ? null : fillAbsentFields(token, stored.token);
  }

  async findTokenById(id: string): Promise<OAuthToken | null> {
    checkIdArgument(id, STORE, 'findTokenById');
    return indexOf(this.current('findTokenById'), 'id').get(id)?.token.clone() ?? null;
  }

  async getTokens(): Promise<OAuthToken[]> {
    return this.current('getTokens').entries.map((entry) => entry.token.clone());
  }

  async saveToken(token: OAuthToken): Promise<void> {
    checkSaveArgument(token, STORE);
    const input = token.clone();
    await this.change('saveToken', (snapshot, lock) => {
      const lookup = {
        findById: (id: string) => indexOf(snapshot, 'id').get(id)?.token ?? null,
        findByKey: (key: LookupKey) => indexOf(snapshot, key.field).get(key.value)?.token ?? null,
      };
      const plan = planSave(lookup, input, STORE);
      const stored: TokenEntry = { token: plan.stored, line: null };
      const replaced = plan.replaces === null ? undefined : snapshot.entries.findIndex((entry) => entry.token === plan.replaces);
      const entries = snapshot.entries.slice();
      if (replaced === undefined) entries.push(stored);
      else entries[replaced] = stored;
      this.commit(snapshot, entries, lock, 'saveToken');
      if (replaced !== undefined) unindexEntry(snapshot, snapshot.entries[replaced] as TokenEntry);
      snapshot.entries = entries;
      indexEntry(snapshot, stored);
      copyStoredFields(token, plan.stored);
    });
  }

  async deleteToken(id: string): Promise<void> {
    checkIdArgument(id, STORE, 'deleteToken');
    await this.change('deleteToken', (snapshot, lock) => {
      if (!indexOf(snapshot, 'id').has(id)) return;
      const entries = snapshot.entries.filter((entry) => entry.token.id !== id);
      this.commit(snapshot, entries, lock, 'deleteToken');
      this.snapshot = buildSnapshot(snapshot.version, snapshot.mtimeNs, entries);
    });
  }

  async deleteTokens(): Promise<void> {
    await this.change('deleteTokens', (snapshot, lock) => {
      // Zoho's FileStore keeps the file with its header; so does this store.
      if (snapshot.version !== null && snapshot.entries.length === 0) return;
      this.commit(snapshot, [], lock, 'deleteTokens');
      this.snapshot = buildSnapshot(snapshot.version, snapshot.mtimeNs, []);
    });
  }

  /** Waits for this store's pending changes. Holds no handles or locks between calls, so nothing else to release. */
  async close(): Promise<void> {
    await this.lastChange;
    this.snapshot = null;
  }

  /** The file's current content: the cached snapshot if size, mtime and inode are unchanged, else a fresh read. */
  private current(operation: TokenStoreOperation): Snapshot {
    try {
      const stats = statSync(this.path, { bigint: true, throwIfNoEntry: false });
      if (stats === undefined) {
        if (this.snapshot?.version !== null) this.snapshot = buildSnapshot(null, 0n, []);
        return this.snapshot as Snapshot;
      }
      if (this.snapshot !== null && this.snapshot.version === fileVersion(stats)) return this.snapshot;
      // Stat and read the same open file, so the version always describes the text read.
      const fd = openSync(this.path, 'r');
      try {
        const opened = fstatSync(fd, { bigint: true });
        const text = readFileSync(fd, 'utf8');
        const entries = readTokenEntries(text, operation);
        this.snapshot = buildSnapshot(fileVersion(opened), opened.mtimeNs, entries);
        return this.snapshot;
      } finally {
        closeSync(fd);
      }
    } catch (error) {
      throw fileSystemError(error, operation);
    }
  }

  /**
   * Runs a change under both locks: the in-process queue (so parallel calls in one process never interleave)
   * and the lock file (so processes never do). The change sees the file as it is now, after any other
   * process's write, and everything from that read to the rename runs without awaiting.
   */
  private change(operation: TokenStoreOperation, apply: (snapshot: Snapshot, lock: HeldLock) => void): Promise<void> {
    const run = async () => {
      let lock: HeldLock;
      try {
        lock = await acquireLock(
          this.lockPath,
          { timeoutMs: this.lockTimeoutMs, staleMs: this.staleLockMs, onStaleLockBroken: (pid) => this.removeTempFiles(pid) },
          operation,
        );
      } catch (error) {
        throw fileSystemError(error, operation);
      }
      try {
        apply(this.current(operation), lock);
      } finally {
        try {
          lock.release();
        } catch {
          // A lock we cannot remove goes stale and is taken over; the change itself is done.
        }
      }
    };
    const previous = changeQueues.get(this.path) ?? Promise.resolve();
    const result = previous.then(run);
    const settled = result.then(
      () => {},
      () => {},
    );
    changeQueues.set(this.path, settled);
    this.lastChange = settled;
    void settled.then(() => {
      if (changeQueues.get(this.path) === settled) changeQueues.delete(this.path);
    });
    return result;
  }

  /** Removes the temporary files a crashed process on this host left beside the token file. */
  private removeTempFiles(pid: number | null): void {
    if (pid === null) return;
    const prefix = `${basename(this.path)}.${pid}.`;
    try {
      for (const name of readdirSync(dirname(this.path))) {
        if (name.startsWith(prefix) && name.endsWith('.tmp')) unlinkSync(join(dirname(this.path), name));
      }
    } catch {
      // Leftovers are harmless; the change goes ahead.
    }
  }

  /**
   * Writes `entries` to a temporary file beside the token file, flushes it, renames it over the token
   * file and flushes the folder: a crash leaves the old file or the new one, never a mix. Sets the
   * snapshot's version to the new file's, so the next lookup does not re-read what was just written; the
   * caller then updates its entries.
   */
  private commit(snapshot: Snapshot, entries: TokenEntry[], lock: HeldLock, operation: TokenStoreOperation): void {
    for (const entry of entries) entry.line ??= formatTokenLine(entry.token);
    const text = formatTokenFile(entries.map((entry) => entry.line as string));
    const tempPath = `${this.path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    let renamed = false;
    try {
      const fd = openSync(tempPath, 'wx', 0o600);
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
      if (!lock.stillHeld()) {
        throw TokenStoreError.unavailable(
          { store: STORE, operation },
          'the lock on the token file was taken over as stale before the change was written; nothing was changed',
        );
      }
      renameSync(tempPath, this.path);
      renamed = true;
      syncFolder(dirname(this.path));
      snapshot.version = fileVersion(written);
      snapshot.mtimeNs = written.mtimeNs;
    } catch (error) {
      if (!renamed) {
        try {
          unlinkSync(tempPath);
        } catch {}
      }
      throw fileSystemError(error, operation);
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
    if (!['EISDIR', 'EINVAL', 'EPERM', 'EBADF'].includes(errorCode(error) ?? '')) throw error;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
