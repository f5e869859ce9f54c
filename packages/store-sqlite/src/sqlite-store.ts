import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  checkIdArgument,
  checkSaveArgument,
  checkTokenArgument,
  copyStoredFields,
  fillAbsentFields,
  type LookupField,
  type LookupKey,
  lookupKey,
  type OAuthToken,
  planSave,
  TOKEN_COLUMNS,
  type TokenRow,
  type TokenStore,
  TokenStoreError,
  type TokenStoreOperation,
} from '@crm/core';
import Database from 'better-sqlite3';
import { checkTableName, DEFAULT_TABLE, rowToToken, STORE, type StoredRow, tokenSql, tokenToParams } from './sql.js';

/** SQLite's journal modes; the value goes into a PRAGMA, so only these are accepted. */
export const JOURNAL_MODES = ['WAL', 'DELETE', 'TRUNCATE', 'PERSIST', 'MEMORY', 'OFF'] as const;
export type JournalMode = (typeof JOURNAL_MODES)[number];

export interface SQLiteTokenStoreOptions {
  /** Database file, created when absent (its folder must exist). Default `zohooauth.db`, Zoho's name; `':memory:'` works. */
  filename?: string;
  /** Your own open better-sqlite3 connection instead of `filename`. `close()` leaves it open. */
  database?: Database.Database;
  /** Table name, a plain identifier. Default `oauthtoken`, Zoho's. */
  table?: string;
  /** How long a write waits for another connection's lock before BACKEND_UNAVAILABLE. Default 5000. */
  busyTimeoutMs?: number;
  /** Default 'WAL': readers never wait for a writer. Not applied to `database` unless given. */
  journalMode?: JournalMode;
  /** Open `filename` read-only: nothing is created, every write fails with BACKEND_FAILURE. Default false. */
  readonly?: boolean;
}

const DEFAULT_FILENAME = 'zohooauth.db';
const DEFAULT_BUSY_TIMEOUT_MS = 5000;

type Statement = Database.Statement<unknown[], unknown>;

/**
 * A `TokenStore` on one SQLite table in Zoho's `oauthtoken` layout. better-sqlite3 is synchronous, so
 * each method runs to completion on the calling thread; every save is one `BEGIN IMMEDIATE` transaction,
 * which serialises writers across processes as well as within one.
 */
export class SQLiteTokenStore implements TokenStore {
  /** The table this store reads and writes. */
  readonly table: string;
  private readonly database: Database.Database;
  private readonly ownsDatabase: boolean;
  private readonly selectById: Statement;
  private readonly selectByLookup: Record<LookupField, Statement>;
  private readonly selectAll: Statement;
  private readonly insert: Statement;
  /** UPDATE statements by the columns they set, each prepared the first time a save changes those columns (at most 511). */
  private readonly updates = new Map<string, Statement>();
  private readonly deleteById: Statement;
  private readonly deleteAll: Statement;
  private readonly saveInTransaction: (token: OAuthToken) => OAuthToken;
  private closed = false;

  constructor(options: SQLiteTokenStoreOptions = {}) {
    const settings = checkOptions(options);
    this.table = settings.table;
    this.ownsDatabase = options.database === undefined;
    this.database =
      options.database ?? openDatabase(settings.filename, settings.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS, settings.readonly);
    let operation: TokenStoreOperation = 'open';
    try {
      if (!this.ownsDatabase && settings.busyTimeoutMs !== undefined) this.database.pragma(`busy_timeout = ${settings.busyTimeoutMs}`);
      const journalMode = settings.journalMode ?? (this.ownsDatabase ? 'WAL' : undefined);
      if (journalMode !== undefined && !this.database.readonly) setJournalMode(this.database, journalMode);
      operation = 'migrate';
      ensureSchema(this.database, this.table);
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
      findByKey: (key: LookupKey) => this.findRow(this.selectByLookup[key.field], key.value, 'saveToken'),
    };
    // planSave decides with the same rules as every other store; the IMMEDIATE lock makes its reads and our write one step.
    const save = this.database.transaction((token: OAuthToken) => {
      const plan = planSave(lookup, token, STORE);
      if (plan.replaces === null) this.insert.run(tokenToParams(plan.stored));
      else this.updateChanged(tokenToParams(plan.replaces), tokenToParams(plan.stored));
      return plan.stored;
    });
    this.saveInTransaction = (token) => save.immediate(token);
  }

  async findToken(token: OAuthToken): Promise<OAuthToken | null> {
    return this.run('findToken', () => {
      checkTokenArgument(token, STORE, 'findToken');
      const key = lookupKey(token);
      const stored = key === null ? null : this.findRow(this.selectByLookup[key.field], key.value, 'findToken');
      return stored === null ? null : fillAbsentFields(token, stored);
    });
  }

  async saveToken(token: OAuthToken): Promise<void> {
    this.run('saveToken', () => {
      checkSaveArgument(token, STORE);
      copyStoredFields(token, this.saveInTransaction(token));
    });
  }

  async deleteToken(id: string): Promise<void> {
    this.run('deleteToken', () => {
      checkIdArgument(id, STORE, 'deleteToken');
      this.deleteById.run(id);
    });
  }

  async getTokens(): Promise<OAuthToken[]> {
    // Array.from, not .map: the driver's array comes from Node's main realm, and under a vm realm (jest) a
    // mapped copy would keep that realm's Array prototype, which strict deep-equality tells apart.
    return this.run('getTokens', () => Array.from(this.selectAll.all() as StoredRow[], (row) => rowToToken(row, 'getTokens')));
  }

  async deleteTokens(): Promise<void> {
    this.run('deleteTokens', () => {
      this.deleteAll.run();
    });
  }

  async findTokenById(id: string): Promise<OAuthToken | null> {
    return this.run('findTokenById', () => {
      checkIdArgument(id, STORE, 'findTokenById');
      return this.findRow(this.selectById, id, 'findTokenById');
    });
  }

  /** Closes the connection if this store opened it. Later calls reject with BACKEND_UNAVAILABLE. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      if (this.ownsDatabase) this.database.close();
    } catch (error) {
      throw toStoreError(error, 'close');
    }
  }

  /** Writes the columns whose value differs; a refresh typically changes only access_token and expiry_time. */
  private updateChanged(before: TokenRow, after: TokenRow): void {
    const changed = TOKEN_COLUMNS.filter((column) => column !== 'id' && before[column] !== after[column]);
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
    return row === undefined ? null : rowToToken(row, operation);
  }

  /** Runs one operation, turning every driver error into a TokenStoreError. */
  private run<T>(operation: TokenStoreOperation, body: () => T): T {
    if (this.closed || !this.database.open) throw TokenStoreError.unavailable({ store: STORE, operation }, 'the store is closed');
    try {
      return body();
    } catch (error) {
      throw toStoreError(error, operation);
    }
  }
}

interface CheckedOptions {
  filename: string;
  table: string;
  busyTimeoutMs: number | undefined;
  journalMode: JournalMode | undefined;
  readonly: boolean;
}

function checkOptions(options: SQLiteTokenStoreOptions): CheckedOptions {
  const invalid = (message: string) => TokenStoreError.invalidArgument({ store: STORE, operation: 'open' }, message);
  if (typeof options !== 'object' || options === null) throw invalid('options must be an object');
  const { filename, database, busyTimeoutMs, journalMode, readonly = false } = options;
  if (database !== undefined) {
    if (filename !== undefined) throw invalid('give either filename or database, not both');
    if (typeof database !== 'object' || database === null || typeof database.prepare !== 'function') {
      throw invalid('database must be a better-sqlite3 Database');
    }
    if (!database.open) throw invalid('database is closed');
    if (readonly) throw invalid('readonly applies to filename; open your database read-only instead');
  }
  if (filename !== undefined && (typeof filename !== 'string' || filename === '')) throw invalid('filename must be a non-empty string');
  if (busyTimeoutMs !== undefined && (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0)) {
    throw invalid('busyTimeoutMs must be a whole number of milliseconds, 0 or more');
  }
  if (journalMode !== undefined && !JOURNAL_MODES.includes(journalMode))
    throw invalid(`journalMode must be one of ${JOURNAL_MODES.join(', ')}`);
  if (typeof readonly !== 'boolean') throw invalid('readonly must be a boolean');
  return {
    filename: filename ?? DEFAULT_FILENAME,
    table: checkTableName(options.table ?? DEFAULT_TABLE),
    busyTimeoutMs,
    journalMode,
    readonly,
  };
}

function openDatabase(filename: string, busyTimeoutMs: number, readonly: boolean): Database.Database {
  try {
    return new Database(filename, { timeout: busyTimeoutMs, readonly, fileMustExist: readonly });
  } catch (error) {
    // better-sqlite3 checks the folder itself and throws a plain TypeError, without an SQLite code.
    const message =
      sqliteCode(error) === '' && !existsSync(dirname(filename))
        ? `cannot open ${filename}: its folder ${dirname(filename)} does not exist`
        : `cannot open ${filename}: missing, not a file, or not permitted`;
    throw TokenStoreError.unavailable({ store: STORE, operation: 'open', cause: error }, message);
  }
}

/** Changes the journal mode only when it differs, so opening a file that is already set up never writes. */
function setJournalMode(database: Database.Database, journalMode: JournalMode): void {
  const current = String(database.pragma('journal_mode', { simple: true }));
  if (current.toUpperCase() !== journalMode && current !== 'memory') database.pragma(`journal_mode = ${journalMode}`);
}

/**
 * Creates the table when absent and adds the indexes it lacks, leaving existing rows and columns alone.
 * Checks first and writes only when something is missing, so a complete schema opens on a read-only file.
 */
function ensureSchema(database: Database.Database, table: string): void {
  const sql = tokenSql(table);
  const missingWork = (): string[] => {
    const columns = database.prepare(sql.tableColumns).pluck().all(table) as string[];
    if (columns.length === 0) return [sql.createTable, sql.createUserNameIndex, ...sql.createTokenIndexes];
    const absent = TOKEN_COLUMNS.filter((column) => !columns.includes(column));
    const work = absent.length === 1 && absent[0] === 'api_domain' ? [sql.addApiDomain] : [];
    if (absent.length > 0 && work.length === 0) {
      throw TokenStoreError.corrupt(
        { store: STORE, operation: 'migrate' },
        `table ${table} exists but lacks the columns ${absent.join(', ')}: it is not a Zoho token table`,
      );
    }
    const indexes = database.prepare(sql.tableIndexes).all(table) as { name: string; isUnique: number; partial: number }[];
    const idIsUnique = indexes.some(
      (index) =>
        index.isUnique === 1 &&
        index.partial === 0 &&
        (database.prepare(sql.indexColumns).pluck().all(index.name) as string[]).join() === 'id',
    );
    if (!idIsUnique) work.push(sql.createIdIndex);
    // SQLite compares object names without case, so `OAuthToken_user_name` is `oauthtoken_user_name`.
    const names = new Set(indexes.map((index) => index.name.toLowerCase()));
    const has = (suffix: string) => names.has(`${table}_${suffix}`.toLowerCase());
    if (!has('user_name')) work.push(sql.createUserNameIndex);
    for (const [position, column] of (['access_token', 'grant_token', 'refresh_token'] as const).entries()) {
      if (!has(column)) work.push(sql.createTokenIndexes[position] as string);
    }
    return work;
  };
  const work = missingWork();
  if (work.length === 0) return;
  if (database.readonly) {
    // Missing indexes only cost speed; a missing table or column would make every statement fail.
    if (work.includes(sql.createTable) || work.includes(sql.addApiDomain)) {
      throw TokenStoreError.failure(
        { store: STORE, operation: 'migrate' },
        `table ${table} is missing or lacks api_domain, and a read-only database cannot be changed`,
      );
    }
    return;
  }
  // Another process may be creating the same schema: decide again under the write lock.
  database
    .transaction(() => {
      for (const statement of missingWork()) {
        try {
          database.exec(statement);
        } catch (error) {
          if (sqliteCode(error).startsWith('SQLITE_CONSTRAINT')) {
            const column = statement === sql.createIdIndex ? 'id' : 'user_name';
            throw TokenStoreError.conflict(
              { store: STORE, operation: 'migrate', cause: error },
              `table ${table} holds several rows with the same ${column}, so the unique index on ${column} cannot be created; ` +
                `nothing was changed. Find them with: ${column === 'id' ? sql.duplicateIds : sql.duplicateUserNames}, then delete or merge the extra rows`,
            );
          }
          throw error;
        }
      }
    })
    .immediate();
}

function sqliteCode(error: unknown): string {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : '';
}

/**
 * Maps a driver error to a TokenStoreError. SQLite messages can quote values (a UNIQUE failure names the
 * column, a CHECK failure may show the row), so they stay in `cause` and the message is written here.
 */
export function toStoreError(error: unknown, operation: TokenStoreOperation): TokenStoreError {
  if (TokenStoreError.is(error)) return error;
  const details = { store: STORE, operation, cause: error };
  const code = sqliteCode(error);
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return TokenStoreError.unavailable(details, 'the database stayed locked by another connection for longer than the busy timeout');
  }
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    // Not `instanceof Error`: the driver's error class may come from another realm (vm contexts, jest).
    const onUserName = String((error as { message?: unknown } | null)?.message).includes('.user_name');
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
  if (code.startsWith('SQLITE_IOERR'))
    return TokenStoreError.failure(details, 'the database file could not be read or written (I/O error)');
  return TokenStoreError.failure(details, code === '' ? 'unexpected error from the database driver' : `the database reported ${code}`);
}
