import { closeSync, constants, existsSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  type HeldLock,
  type LockOptions,
  OAuthToken,
  type TokenLocking,
  type TokenStore,
  TokenStoreError,
  type TokenStoreOperation,
} from '@crm/core';
import * as kit from '@crm/core/store-kit';
import Database from 'better-sqlite3';
import {
  ensureSchema,
  keepsTextAsGiven,
  LOCK_COLUMNS,
  lockKey,
  lockSql,
  lockTableName,
  STORE_NAME,
  tableColumns,
  tableOption,
  tokenSql,
} from './sql.js';

/** SQLite's journal modes; the value goes into a PRAGMA, so only these are accepted. */
export const JOURNAL_MODES = ['WAL', 'DELETE', 'TRUNCATE', 'PERSIST', 'MEMORY', 'OFF'] as const;
export type JournalMode = (typeof JOURNAL_MODES)[number];

export interface SQLiteTokenStoreOptions {
  /** Database file, created (mode 0600) when absent; its folder must exist. Default `zohooauth.db`, Zoho's name; `':memory:'` works. */
  filename?: string;
  /** Your own open better-sqlite3 connection instead of `filename`. `close()` leaves it open. */
  database?: Database.Database;
  /** Table name, a plain identifier. Default `oauthtoken`, Zoho's. */
  table?: string;
  /** Create the table and its indexes when missing. Default true; false only checks that the table exists. */
  createSchema?: boolean;
  /** How long a statement waits for another connection's lock (SQLite's busy timeout) before BACKEND_UNAVAILABLE. Default 5000. */
  operationTimeoutMs?: number;
  /** Default 'WAL': readers never wait for a writer. Not applied to `database` unless given. */
  journalMode?: JournalMode;
  /** Open `filename` read-only: nothing is created, every write fails with BACKEND_FAILURE. Default false. */
  readonly?: boolean;
}

const DEFAULT_FILENAME = 'zohooauth.db';
const OPTION_NAMES: readonly string[] = ['filename', 'database', 'table', 'createSchema', 'operationTimeoutMs', 'journalMode', 'readonly'];
/** A Map, not an object literal: an option named `constructor` or `__proto__` must read as unknown, not inherited. */
const RENAMED_OPTIONS = { busyTimeoutMs: 'operationTimeoutMs' };

type Statement = Database.Statement<unknown[], unknown>;
/** A row as better-sqlite3 returns it; a blob (Buffer) is not text, which tokenFromRow reports as CORRUPT_DATA. */
type StoredRow = Parameters<typeof kit.tokenFromRow>[0];

/** The statements of `withLock`, prepared once the lease table is found. */
type LockStatements = Record<'acquire' | 'renew' | 'release', Statement>;
/** A lease this store holds: the row's key (a hash) and this acquisition's owner token. */
interface HeldLease {
  key: string;
  owner: string;
}

/**
 * A `TokenStore` on one SQLite table in Zoho's `oauthtoken` layout. better-sqlite3 is synchronous, so
 * each method runs to completion on the calling thread; every save is one `BEGIN IMMEDIATE` transaction,
 * which serialises writers across processes as well as within one. `withLock` keeps its leases in a table
 * beside the token table (`<table>_locks`), one row per held key.
 */
export class SQLiteTokenStore implements TokenStore, TokenLocking {
  /** The table this store reads and writes. */
  readonly table: string;
  private readonly database: Database.Database;
  private readonly ownsDatabase: boolean;
  private readonly selectById: Statement;
  private readonly selectByLookup: Record<kit.LookupField, Statement>;
  private readonly selectAll: Statement;
  private readonly insert: Statement;
  /** UPDATE statements by the columns they set, each prepared the first time a save changes those columns (at most 511). */
  private readonly updates = new Map<string, Statement>();
  /** updateInPlace's statements, by the columns they set, each prepared on first use (at most 255). */
  private readonly inPlaceUpdates = new Map<string, Statement>();
  /**
   * False on a table with a text column of numeric affinity, which may store a text such as '0123' as a number:
   * every save then reads its row back and checks it (CORRUPT_DATA rolls it back). Learnt again whenever the
   * database's schema version changes (another connection may rebuild the table).
   */
  private writeBackAsGiven = true;
  private checkedSchemaVersion: unknown = null;
  private readonly schemaVersion: Statement;
  private readonly deleteById: Statement;
  private readonly deleteAll: Statement;
  private readonly saveInTransaction: (token: OAuthToken) => OAuthToken;
  /** Prepared on the first withLock that finds the lease table. */
  private lockStatements: LockStatements | null = null;
  /** Leases taken and not yet released, which close() releases. */
  private readonly leases = new Set<HeldLease>();
  private closed = false;

  constructor(options: SQLiteTokenStoreOptions = {}) {
    const settings = checkOptions(options);
    this.table = settings.table;
    this.ownsDatabase = settings.database === undefined;
    this.database = settings.database ?? openDatabase(settings.filename, settings.operationTimeoutMs, settings.readonly);
    let operation: TokenStoreOperation = 'open';
    try {
      if (!this.ownsDatabase && options.operationTimeoutMs !== undefined) {
        this.database.pragma(`busy_timeout = ${settings.operationTimeoutMs}`);
      }
      const journalMode = settings.journalMode ?? (this.ownsDatabase ? 'WAL' : undefined);
      if (journalMode !== undefined && !this.database.readonly) setJournalMode(this.database, journalMode);
      operation = 'migrate';
      ensureSchema(this.database, this.table, settings.createSchema);
      this.schemaVersion = this.database.prepare('PRAGMA schema_version').pluck();
      this.checkColumnTypes();
      const sql = tokenSql(this.table);
      const prepare = (text: string) => this.database.prepare(text);
      this.selectById = prepare(sql.selectById);
      this.selectByLookup = {
        userName: prepare(sql.selectByLookup('userName')),
        accessToken: prepare(sql.selectByLookup('accessToken')),
        grantToken: prepare(sql.selectByLookup('grantToken')),
        refreshToken: prepare(sql.selectByLookup('refreshToken')),
      };
      this.selectAll = prepare(sql.selectAll);
      this.insert = prepare(sql.insert);
      this.deleteById = prepare(sql.deleteById);
      this.deleteAll = prepare(sql.deleteAll);
    } catch (error) {
      if (this.ownsDatabase) this.database.close();
      throw toStoreError(error, operation);
    }
    const lookup = {
      findById: (id: string) => this.findRow(this.selectById, id, 'saveToken'),
      findByKey: (key: kit.LookupKey) => this.findRow(this.selectByLookup[key.field], key.value, 'saveToken'),
    };
    // planSave decides with the same rules as every other store; the IMMEDIATE lock makes its reads and our write one step.
    // A failing statement may quote stored values too (a trigger's RAISE): the kit drops such texts from causes.
    const save = this.database.transaction((token: OAuthToken) => {
      this.checkColumnTypes();
      const updated = this.updateInPlace(token);
      if (updated !== null) return updated;
      const plan = kit.planSave(lookup, token, STORE_NAME);
      if (plan.replaces === null) this.insert.run(kit.tokenToRow(plan.stored));
      else this.updateChanged(kit.tokenToRow(plan.replaces), kit.tokenToRow(plan.stored));
      if (this.writeBackAsGiven) return plan.stored;
      // The row as stored, checked: a value a column changed is CORRUPT_DATA, which rolls the save back.
      const written = this.selectById.get(plan.stored.id) as StoredRow | undefined;
      if (written === undefined)
        throw TokenStoreError.failure({ store: STORE_NAME, operation: 'saveToken' }, 'the saved token could not be read back');
      return kit.tokenFromRow(written, STORE_NAME, 'saveToken');
    });
    this.saveInTransaction = (token) => save.immediate(token);
  }

  async findToken(token: OAuthToken): Promise<OAuthToken | null> {
    return this.run('findToken', token, () => {
      kit.checkTokenArgument(token, STORE_NAME, 'findToken');
      const key = kit.lookupKey(token);
      const stored = key === null ? null : this.findRow(this.selectByLookup[key.field], key.value, 'findToken');
      return stored === null ? null : kit.fillAbsentFields(token, stored);
    });
  }

  async saveToken(token: OAuthToken): Promise<void> {
    this.run('saveToken', token, () => {
      kit.checkSaveArgument(token, STORE_NAME);
      kit.copyStoredFields(token, this.saveInTransaction(token));
    });
  }

  async deleteToken(id: string): Promise<void> {
    this.run('deleteToken', null, () => {
      kit.checkIdArgument(id, STORE_NAME, 'deleteToken');
      this.deleteById.run(id);
    });
  }

  async getTokens(): Promise<OAuthToken[]> {
    // Array.from, not .map: the driver's array comes from Node's main realm, and under a vm realm (jest) a
    // mapped copy would keep that realm's Array prototype, which strict deep-equality tells apart.
    return this.run('getTokens', null, () =>
      Array.from(this.selectAll.all() as StoredRow[], (row) => kit.tokenFromRow(row, STORE_NAME, 'getTokens')),
    );
  }

  async deleteTokens(): Promise<void> {
    this.run('deleteTokens', null, () => {
      this.deleteAll.run();
    });
  }

  async findTokenById(id: string): Promise<OAuthToken | null> {
    return this.run('findTokenById', null, () => {
      kit.checkIdArgument(id, STORE_NAME, 'findTokenById');
      return this.findRow(this.selectById, id, 'findTokenById');
    });
  }

  /**
   * Runs `work` holding the lock on `key` across every connection and process using this table (see
   * `TokenLocking` in `@crm/core`). The lease is a row of `<table>_locks`; a holder that dies stops renewing it,
   * and the next taker takes it over once `expires_at` has passed.
   */
  async withLock<T>(key: string, work: (lock: HeldLock) => Promise<T>, options?: LockOptions): Promise<T> {
    if (this.closed) throw TokenStoreError.closed({ store: STORE_NAME, operation: 'withLock' });
    return kit.runWithLease(STORE_NAME, key, work, options, (checkedKey, leaseMs) => this.tryAcquire(checkedKey, leaseMs));
  }

  /** Closes the connection if this store opened it. Later calls reject with STORE_CLOSED; closing again does nothing. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Leases still held are freed now rather than left to expire: their holders cannot write through this store any more.
    for (const lease of this.leases) {
      try {
        if (this.database.open) this.lockStatements?.release.run(lease);
      } catch {
        // Best effort: the lease ends by itself.
      }
    }
    this.leases.clear();
    // better-sqlite3's close() throws only while one of its iterators runs, and this store never keeps one open.
    if (this.ownsDatabase) this.database.close();
  }

  /** One attempt: one statement that inserts the lease, or takes over one that ran out. */
  private async tryAcquire(key: string, leaseMs: number): Promise<kit.Lease | null> {
    const lease: HeldLease = { key: lockKey(key), owner: kit.newLockOwner() };
    const taken = this.run('withLock', null, () => {
      const now = Date.now();
      return this.prepareLock().acquire.run({ ...lease, expiresAt: now + leaseMs, now }).changes === 1;
    });
    if (!taken) return null;
    this.leases.add(lease);
    const statements = this.prepareLock();
    return {
      renew: async (ms) => {
        // After close() the lease was released, or will be: this holder no longer holds it.
        if (this.closed || !this.leases.has(lease)) return false;
        return this.run('withLock', null, () => {
          const now = Date.now();
          return statements.renew.run({ ...lease, expiresAt: now + ms, now }).changes === 1;
        });
      },
      release: async () => {
        if (!this.leases.delete(lease) || this.closed) return;
        this.run('withLock', null, () => statements.release.run(lease));
      },
    };
  }

  /** The lease statements; BACKEND_FAILURE naming the SQL to run when the lease table is missing. */
  private prepareLock(): LockStatements {
    if (this.lockStatements !== null) return this.lockStatements;
    const name = lockTableName(this.table);
    const sql = lockSql(this.table);
    const columns = tableColumns(this.database, name);
    if (columns.length === 0) {
      throw TokenStoreError.failure(
        { store: STORE_NAME, operation: 'withLock' },
        `withLock needs the table ${name}, which is missing (createSchema false, or a read-only database when it was opened); create it with: ${sql.createTable}`,
      );
    }
    if (!LOCK_COLUMNS.every((column) => columns.includes(column))) {
      throw TokenStoreError.failure(
        { store: STORE_NAME, operation: 'withLock' },
        `withLock needs the table ${name} with the columns ${LOCK_COLUMNS.join(', ')}, but a table of that name exists without them; use another table name for the tokens`,
      );
    }
    this.lockStatements = {
      acquire: this.database.prepare(sql.acquire),
      renew: this.database.prepare(sql.renew),
      release: this.database.prepare(sql.release),
    };
    return this.lockStatements;
  }

  /**
   * The common saves in one statement: a token with an id and no user name (TokenManager's refresh), or a
   * user name and no id, whose stored token exists. Present fields replace stored ones, absent ones are
   * not touched, the id and the user name stay: the merge planSave would make, with no rename and so no
   * conflict possible. Null when the save needs planSave: no such stored token (an insert), or both id and
   * user name given (a rename by id). Runs inside the save's transaction. The stored row is read and
   * checked first, as findToken would read it: a row that cannot be read as a token is CORRUPT_DATA and is
   * never overwritten, even when the save supplies every column that makes it unreadable.
   */
  private updateInPlace(token: OAuthToken): OAuthToken | null {
    const row = kit.tokenToRow(token);
    let found: StoredRow | undefined;
    if (row.id !== null) {
      if (row.user_name !== null) return null;
      found = this.selectById.get(row.id) as StoredRow | undefined;
    } else {
      if (row.user_name === null) return null;
      found = this.selectByLookup.userName.get(row.user_name) as StoredRow | undefined;
    }
    if (found === undefined) return null;
    // Throws CORRUPT_DATA, which rolls the transaction back before anything is written.
    const stored = kit.tokenFromRow(found, STORE_NAME, 'saveToken');
    // The update targets the row just checked, by its id (a user-name save gives none).
    row.id = stored.id;
    let key = '';
    const columns: kit.TokenColumn[] = [];
    for (const column of kit.TOKEN_COLUMNS) {
      if (column !== 'id' && column !== 'user_name' && row[column] !== null) {
        columns.push(column);
        key += `,${column}`;
      }
    }
    let statement = this.inPlaceUpdates.get(key);
    if (statement === undefined) {
      const sql = tokenSql(this.table);
      statement = this.database.prepare(this.writeBackAsGiven ? sql.update(columns) : sql.updateReturning(columns));
      this.inPlaceUpdates.set(key, statement);
    }
    // The row was read in this transaction, so it is still there; a trigger that deletes it leaves it to planSave.
    if (!this.writeBackAsGiven) {
      // A column may have turned a value into something else: the write-back is the row as stored, checked
      // again (CORRUPT_DATA rolls the save back).
      const updated = statement.get(row) as StoredRow | undefined;
      return updated === undefined ? null : kit.tokenFromRow(updated, STORE_NAME, 'saveToken');
    }
    if (statement.run(row).changes === 0) return null;
    // What this UPDATE wrote: the checked stored row with the given columns in place (built here instead of
    // read back with RETURNING, which costs a second row decode and a second check of the same values).
    const written: StoredRow = { ...found };
    for (const column of columns) written[column] = row[column];
    return kit.tokenFromRow(written, STORE_NAME, 'saveToken');
  }

  /** Learns `writeBackAsGiven` again when the schema changed since it was learnt (and on the first call). */
  private checkColumnTypes(): void {
    const version = this.schemaVersion.get();
    if (version === this.checkedSchemaVersion) return;
    const asGiven = keepsTextAsGiven(this.database, this.table);
    if (asGiven !== this.writeBackAsGiven) this.inPlaceUpdates.clear(); // they were prepared for the other kind of write-back
    this.writeBackAsGiven = asGiven;
    this.checkedSchemaVersion = version;
  }

  /** Writes the columns whose value differs; a refresh typically changes only access_token and expiry_time. */
  private updateChanged(before: kit.TokenRow, after: kit.TokenRow): void {
    const changed = kit.TOKEN_COLUMNS.filter((column) => column !== 'id' && before[column] !== after[column]);
    if (changed.length === 0) return;
    const key = changed.join();
    let statement = this.updates.get(key);
    if (statement === undefined) {
      statement = this.database.prepare(tokenSql(this.table).update(changed));
      this.updates.set(key, statement);
    }
    statement.run(after);
  }

  private findRow(statement: Statement, value: string, operation: TokenStoreOperation): OAuthToken | null {
    const row = statement.get(value) as StoredRow | undefined;
    return row === undefined ? null : kit.tokenFromRow(row, STORE_NAME, operation);
  }

  /**
   * Runs one operation, turning every driver error into a TokenStoreError whose cause has the secrets of
   * `token` (the argument of findToken and saveToken, else null) removed. They are read only then: a driver
   * error comes after the argument's check, and the check's own errors carry no cause.
   */
  private run<T>(operation: TokenStoreOperation, token: unknown, body: () => T): T {
    if (this.closed) throw TokenStoreError.closed({ store: STORE_NAME, operation });
    if (!this.database.open) throw TokenStoreError.unavailable({ store: STORE_NAME, operation }, 'the database was closed by its owner');
    try {
      return body();
    } catch (error) {
      throw toStoreError(error, operation, TokenStoreError.is(error) || !OAuthToken.isToken(token) ? [] : kit.tokenSecrets(token));
    }
  }
}

interface CheckedOptions {
  filename: string;
  database: Database.Database | undefined;
  table: string;
  createSchema: boolean;
  operationTimeoutMs: number;
  journalMode: JournalMode | undefined;
  readonly: boolean;
}

function checkOptions(options: unknown): CheckedOptions {
  const invalid = (message: string) => TokenStoreError.invalidArgument({ store: STORE_NAME, operation: 'open' }, message);
  kit.checkOptionsObject(options, STORE_NAME);
  kit.checkOptionNames(options, OPTION_NAMES, STORE_NAME, RENAMED_OPTIONS);
  const { filename, database, journalMode } = options as SQLiteTokenStoreOptions;
  const readonly = kit.booleanOption(options.readonly, 'readonly', false, STORE_NAME);
  if (database !== undefined) {
    if (filename !== undefined) throw invalid('give either filename or database, not both');
    if (typeof database !== 'object' || database === null || typeof database.prepare !== 'function') {
      throw invalid('database must be a better-sqlite3 Database');
    }
    if (!database.open) throw invalid('database is closed');
    if (readonly) throw invalid('readonly applies to filename; open your database read-only instead');
  }
  if (filename !== undefined && (typeof filename !== 'string' || filename === '')) throw invalid('filename must be a non-empty string');
  if (journalMode !== undefined && !JOURNAL_MODES.includes(journalMode)) {
    throw invalid(`journalMode must be one of ${JOURNAL_MODES.join(', ')}`);
  }
  return {
    filename: filename ?? DEFAULT_FILENAME,
    database,
    table: tableOption(options.table),
    createSchema: kit.booleanOption(options.createSchema, 'createSchema', true, STORE_NAME),
    operationTimeoutMs: kit.operationTimeoutOption(options.operationTimeoutMs, STORE_NAME),
    journalMode,
    readonly,
  };
}

function openDatabase(filename: string, operationTimeoutMs: number, readonly: boolean): Database.Database {
  // The file holds secrets. SQLite would create it 0644 under the usual umask; made 0600 here first, it
  // passes that mode on to its -wal, -shm and -journal files. An existing file keeps the mode its owner gave it.
  // O_CREAT without O_EXCL also creates the target of a dangling symlink, as SQLite would; read-only and
  // non-blocking, so opening an existing file (or a FIFO) needs no write permission and changes nothing.
  if (!readonly && filename !== ':memory:') {
    try {
      closeSync(openSync(filename, constants.O_CREAT | constants.O_RDONLY | constants.O_NONBLOCK, 0o600));
    } catch {
      // It exists already, or cannot be created: SQLite's own open below says which.
    }
  }
  try {
    return new Database(filename, { timeout: operationTimeoutMs, readonly, fileMustExist: readonly });
  } catch (error) {
    // better-sqlite3 checks the folder itself and throws a plain TypeError, without an SQLite code.
    const message =
      kit.driverErrorCode(error) === '' && !existsSync(dirname(filename))
        ? `cannot open ${filename}: its folder ${dirname(filename)} does not exist`
        : `cannot open ${filename}: missing, not a file, or not permitted`;
    throw TokenStoreError.unavailable({ store: STORE_NAME, operation: 'open', cause: error }, message);
  }
}

/** Changes the journal mode only when it differs, so opening a file that is already set up never writes. */
function setJournalMode(database: Database.Database, journalMode: JournalMode): void {
  const current = String(database.pragma('journal_mode', { simple: true }));
  if (current.toUpperCase() !== journalMode && current !== 'memory') database.pragma(`journal_mode = ${journalMode}`);
}

/**
 * Maps a driver error to a TokenStoreError. SQLite messages can quote values (a trigger's RAISE, a CHECK
 * failure), so the message is written here, and the cause is a copy with the `handled` values removed.
 */
export function toStoreError(error: unknown, operation: TokenStoreOperation, handled: readonly string[] = []): TokenStoreError {
  if (TokenStoreError.is(error)) return error;
  const details = { store: STORE_NAME, operation, cause: error, secrets: handled };
  const code = kit.driverErrorCode(error);
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return TokenStoreError.unavailable(details, 'the database stayed locked by another connection for longer than operationTimeoutMs');
  }
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    const onUserName = kit.driverErrorMessage(error).includes('.user_name');
    return TokenStoreError.conflict(details, `another stored token already has this ${onUserName ? 'user name' : 'id'}`);
  }
  if (code.startsWith('SQLITE_READONLY')) {
    return TokenStoreError.failure(
      details,
      'the database is read-only: the file or its folder is not writable by this process, or it was opened read-only',
    );
  }
  if (code.startsWith('SQLITE_CANTOPEN')) return TokenStoreError.unavailable(details, 'the database file cannot be opened');
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
    return TokenStoreError.corrupt(details, 'the database file is damaged or is not a SQLite database');
  }
  if (code === 'SQLITE_FULL') return TokenStoreError.failure(details, 'the disk is full');
  if (code.startsWith('SQLITE_IOERR')) {
    return TokenStoreError.failure(details, 'the database file could not be read or written (I/O error)');
  }
  return TokenStoreError.failure(details, code === '' ? 'unexpected error from the database driver' : `the database reported ${code}`);
}
