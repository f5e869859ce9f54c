/**
 * An example token store, written only against the published entry points `@crm/core` and
 * `@crm/core/store-kit`: every token in one JSON file, for one machine's processes. docs/WRITING-A-STORE.md
 * walks through it. It passes the whole `@crm/store-conformance` suite, the `processes` group included.
 *
 * - Reads go to the file on every call (no in-memory copy another process's write could bypass).
 * - Changes are a read-modify-write under a lock file, written to a temporary file (mode 0600), fsync'd
 *   and renamed over the old one: readers see the old file or the new one, never half of either.
 */
import { randomUUID } from 'node:crypto';
import { closeSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { type OAuthToken, type TokenStore, TokenStoreError, type TokenStoreOperation } from '@crm/core';
import {
  checkIdArgument,
  checkOptionsObject,
  checkSaveArgument,
  checkTokenArgument,
  copyStoredFields,
  DEFAULT_OPERATION_TIMEOUT_MS,
  driverErrorCode,
  fillAbsentFields,
  type LookupKey,
  lookupKey,
  matchesLookupKey,
  planSave,
  positiveIntegerOption,
  type TokenRow,
  tokenFromRow,
  tokenSecrets,
  tokenToRow,
  withDeadline,
} from '@crm/core/store-kit';

export const STORE_NAME = 'JsonFileTokenStore';
const KNOWN_OPTIONS = ['filename', 'operationTimeoutMs'];
/** A lock held this long belongs to a holder that hung: a change takes milliseconds. */
const STALE_LOCK_MS = 10_000;

export interface JsonFileTokenStoreOptions {
  /** The JSON file holding the tokens; created on the first save. */
  filename: string;
  /** How long a change may wait for another process's lock before BACKEND_UNAVAILABLE (default 5000). */
  operationTimeoutMs?: number;
}

export class JsonFileTokenStore implements TokenStore {
  readonly filename: string;
  private readonly lockPath: string;
  private readonly timeoutMs: number;
  private closed = false;

  constructor(options: JsonFileTokenStoreOptions) {
    checkOptionsObject(options, STORE_NAME);
    const unknown = Object.keys(options).find((name) => !KNOWN_OPTIONS.includes(name));
    if (unknown !== undefined) throw invalidOption(`unknown option ${unknown}; the options are ${KNOWN_OPTIONS.join(', ')}`);
    if (typeof options.filename !== 'string' || options.filename === '') throw invalidOption('filename must be a non-empty string');
    this.filename = options.filename;
    this.lockPath = `${options.filename}.lock`;
    this.timeoutMs = positiveIntegerOption(options.operationTimeoutMs, 'operationTimeoutMs', DEFAULT_OPERATION_TIMEOUT_MS, STORE_NAME);
  }

  async findToken(token: OAuthToken): Promise<OAuthToken | null> {
    this.checkOpen('findToken');
    checkTokenArgument(token, STORE_NAME, 'findToken');
    const key = lookupKey(token);
    const stored = key === null ? null : byKey(await this.read('findToken'), key);
    return stored === null ? null : fillAbsentFields(token, stored);
  }

  async saveToken(token: OAuthToken): Promise<void> {
    this.checkOpen('saveToken');
    checkSaveArgument(token, STORE_NAME); // planSave does not check for INVALID_TOKEN itself
    const stored = await this.change('saveToken', tokenSecrets(token), (tokens) => {
      const lookup = { findById: (id: string) => byId(tokens, id), findByKey: (key: LookupKey) => byKey(tokens, key) };
      const plan = planSave(lookup, token, STORE_NAME); // throws CONFLICT before anything is written
      return { tokens: [...tokens.filter((other) => other !== plan.replaces), plan.stored], result: plan.stored };
    });
    copyStoredFields(token, stored);
  }

  async deleteToken(id: string): Promise<void> {
    this.checkOpen('deleteToken');
    checkIdArgument(id, STORE_NAME, 'deleteToken');
    await this.change('deleteToken', [], (tokens) => ({ tokens: tokens.filter((token) => token.id !== id), result: undefined }));
  }

  async getTokens(): Promise<OAuthToken[]> {
    this.checkOpen('getTokens');
    return this.read('getTokens'); // fresh objects on every read: callers never hold what is stored
  }

  async deleteTokens(): Promise<void> {
    this.checkOpen('deleteTokens');
    await this.change('deleteTokens', [], () => ({ tokens: [], result: undefined }));
  }

  async findTokenById(id: string): Promise<OAuthToken | null> {
    this.checkOpen('findTokenById');
    checkIdArgument(id, STORE_NAME, 'findTokenById');
    return byId(await this.read('findTokenById'), id);
  }

  /** Nothing stays open between calls (the lock is released by each change), so closing only refuses later calls. */
  async close(): Promise<void> {
    this.closed = true;
  }

  private checkOpen(operation: TokenStoreOperation): void {
    if (this.closed) throw TokenStoreError.closed({ store: STORE_NAME, operation });
  }

  /**
   * Every stored token, read from the file now. A missing file is an empty store. Asynchronous on purpose:
   * a caller polling in a loop must not starve the timers other calls wait on.
   */
  private async read(operation: TokenStoreOperation): Promise<OAuthToken[]> {
    let text: string;
    try {
      text = await readFile(this.filename, 'utf8');
    } catch (error) {
      if (driverErrorCode(error) === 'ENOENT') return [];
      throw TokenStoreError.failure({ store: STORE_NAME, operation, cause: error }, 'the token file could not be read');
    }
    let rows: unknown;
    try {
      rows = (JSON.parse(text) as { tokens?: unknown }).tokens;
    } catch {
      rows = undefined;
    }
    if (!Array.isArray(rows)) throw TokenStoreError.corrupt({ store: STORE_NAME, operation }, 'the token file is not a JSON token list');
    return rows.map((row: unknown) => {
      if (typeof row !== 'object' || row === null)
        throw TokenStoreError.corrupt({ store: STORE_NAME, operation }, 'a stored token is not an object');
      return tokenFromRow(row as Partial<TokenRow>, STORE_NAME, operation); // CORRUPT_DATA for a bad value
    });
  }

  /**
   * Read-modify-write under the lock. Nothing awaits between the last look at `signal` and the rename, so
   * a change the deadline already reported as failed is never written later.
   */
  private change<T>(
    operation: TokenStoreOperation,
    secrets: string[],
    decide: (tokens: OAuthToken[]) => { tokens: OAuthToken[]; result: T },
  ): Promise<T> {
    const deadline = { timeoutMs: this.timeoutMs, store: STORE_NAME, operation, backend: 'the token file lock' };
    return withDeadline(deadline, async (signal) => {
      const holder = await this.lock(signal, operation);
      const lockedAt = Date.now();
      try {
        const { tokens, result } = decide(await this.read(operation)); // a corrupt file stops here, never overwritten
        const temporary = `${this.filename}.tmp`; // one writer at a time: the lock holder
        signal.throwIfAborted();
        // The lock is a lease: held this long, another process may have broken it as stale. Give up instead.
        if (Date.now() - lockedAt > STALE_LOCK_MS / 2)
          throw TokenStoreError.unavailable({ store: STORE_NAME, operation }, 'the lock was held too long');
        try {
          // flush: on disk before the rename, so a crash leaves the old file or the new one.
          writeFileSync(temporary, JSON.stringify({ tokens: tokens.map(tokenToRow) }, null, 2), { mode: 0o600, flush: true });
          renameSync(temporary, this.filename);
        } catch (error) {
          throw TokenStoreError.failure({ store: STORE_NAME, operation, cause: error, secrets }, 'the token file could not be written');
        }
        return result;
      } finally {
        this.unlock(holder);
      }
    });
  }

  /**
   * Creates the lock file (`wx`: only if absent), polling while another holder has it, until `signal` aborts.
   * Returns what it wrote: the pid, for stale-lock checks, and a nonce that tells this holder from any other.
   */
  private async lock(signal: AbortSignal, operation: TokenStoreOperation): Promise<string> {
    const holder = `${process.pid} ${randomUUID()}`;
    for (let delayMs = 1; !signal.aborted; delayMs = Math.min(delayMs * 2, 5)) {
      try {
        // The loop checked `signal` in this same synchronous run: no lock is taken after the deadline.
        writeFileSync(this.lockPath, holder, { flag: 'wx', mode: 0o600 }); // EEXIST while held
        return holder;
      } catch (error) {
        if (driverErrorCode(error) !== 'EEXIST') {
          throw TokenStoreError.failure({ store: STORE_NAME, operation, cause: error }, 'the lock file could not be created');
        }
        this.breakStaleLock();
      }
      await new Promise((resolve) => setTimeout(resolve, delayMs * (1 + Math.random())));
    }
    throw signal.reason;
  }

  /** Removes the lock if it is still ours: after a lease ran out it may be another process's. */
  private unlock(holder: string): void {
    try {
      if (readFileSync(this.lockPath, 'utf8') === holder) unlinkSync(this.lockPath);
    } catch {} // already gone
  }

  /**
   * Removes a lock whose holder died (its pid is gone) or hung (older than STALE_LOCK_MS). Two waiters may
   * both find it stale; the guard file lets only one of them check again and remove it, so neither removes
   * the fresh lock the other just created.
   */
  private breakStaleLock(): void {
    const lockPath = this.lockPath;
    const guard = `${lockPath}.break`;
    try {
      const holder = readFileSync(lockPath, 'utf8');
      const pid = Number.parseInt(holder, 10);
      const dead = holder !== '' && !processAlive(pid);
      if (!dead && Date.now() - statSync(lockPath).mtimeMs < STALE_LOCK_MS) return;
      closeSync(openSync(guard, 'wx'));
      try {
        if (readFileSync(lockPath, 'utf8') === holder) unlinkSync(lockPath);
      } finally {
        unlinkSync(guard);
      }
    } catch {
      // The lock went away (retry at once) or another waiter holds the guard. A guard left by a waiter
      // that died inside these few lines would block everyone: drop it once it is old.
      try {
        if (Date.now() - statSync(guard).mtimeMs > STALE_LOCK_MS) unlinkSync(guard);
      } catch {}
    }
  }
}

function byId(tokens: OAuthToken[], id: string): OAuthToken | null {
  return tokens.find((token) => token.id === id) ?? null;
}

function byKey(tokens: OAuthToken[], key: LookupKey): OAuthToken | null {
  return tokens.find((token) => matchesLookupKey(token, key)) ?? null;
}

/** True unless the process is known to be gone (EPERM: it exists under another user). */
function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return true; // unreadable: let the age decide
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return driverErrorCode(error) === 'EPERM';
  }
}

function invalidOption(message: string): TokenStoreError {
  return TokenStoreError.invalidArgument({ store: STORE_NAME, operation: 'open' }, message);
}
