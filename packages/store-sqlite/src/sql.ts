import { createHash } from 'node:crypto';
import { TokenStoreError } from '@crm/core';
import { driverErrorCode, type LookupField, nameOption, TOKEN_COLUMNS, type TokenColumn } from '@crm/core/store-kit';
import type Database from 'better-sqlite3';

/** The name every error of this package carries. */
export const STORE_NAME = 'SQLiteTokenStore';

/** Zoho's default table name (the SQLite sample and the MySQL DBStore). */
export const DEFAULT_TABLE = 'oauthtoken';

/** A plain identifier of up to 63 characters; `sqlite_` names are reserved by SQLite itself. */
const TABLE_NAME = /^(?!sqlite_)[a-z_][a-z0-9_]{0,62}$/i;

/** A table name becomes part of SQL text (SQLite cannot bind identifiers), so only plain identifiers pass. */
export function tableOption(table: unknown): string {
  return nameOption(
    table,
    'table',
    DEFAULT_TABLE,
    TABLE_NAME,
    'an identifier: a letter or underscore, then up to 62 letters, digits or underscores, not starting with sqlite_',
    STORE_NAME,
  );
}

/** Quoted even though validated, so keywords (`order`, `group`) work as table names. */
function quote(identifier: string): string {
  return `"${identifier}"`;
}

/** Zoho's columns, in Zoho's order, so `SELECT *` readers that go by position (the Python sample) keep working. */
const COLUMN_LIST = TOKEN_COLUMNS.join(', ');

/**
 * The user-name lookup repeats the partial index's condition: SQLite uses a partial index only when the
 * query's WHERE implies the index's WHERE, and `user_name = ?` alone does not imply `user_name <> ''`.
 * Lookup values are never empty (core treats '' as absent), so the extra term changes no result.
 */
const LOOKUP_WHERE: Record<LookupField, string> = {
  userName: "user_name = ? AND user_name <> ''",
  accessToken: 'access_token = ?',
  grantToken: 'grant_token = ?',
  refreshToken: 'refresh_token = ?',
};

const TABLE_COLUMNS = 'SELECT name FROM pragma_table_info(?)';

const TOKEN_INDEX_COLUMNS = ['access_token', 'grant_token', 'refresh_token'] as const;

/** Every statement the store runs, for one table. */
export function tokenSql(table: string) {
  const name = quote(table);
  const index = (suffix: string) => quote(`${table}_${suffix}`);
  return {
    /** Zoho's sample declares varchar(n); SQLite ignores lengths, so TEXT gives the same column affinity. */
    createTable:
      `CREATE TABLE IF NOT EXISTS ${name} (id TEXT NOT NULL, user_name TEXT, client_id TEXT, client_secret TEXT, ` +
      'refresh_token TEXT, access_token TEXT, grant_token TEXT, expiry_time TEXT, redirect_url TEXT, api_domain TEXT, PRIMARY KEY (id))',
    /** Only needed on a table whose id is not already its primary key. */
    createIdIndex: `CREATE UNIQUE INDEX IF NOT EXISTS ${index('id')} ON ${name} (id)`,
    /** NULL and '' both mean "no user" in Zoho's stores, so neither takes part in uniqueness. */
    createUserNameIndex: `CREATE UNIQUE INDEX IF NOT EXISTS ${index('user_name')} ON ${name} (user_name) WHERE user_name IS NOT NULL AND user_name <> ''`,
    createTokenIndexes: TOKEN_INDEX_COLUMNS.map((column) => `CREATE INDEX IF NOT EXISTS ${index(column)} ON ${name} (${column})`),
    /** Tables of Zoho SDKs before `api_domain` existed; Zoho's SDKs add the column the same way. */
    addApiDomain: `ALTER TABLE ${name} ADD COLUMN api_domain TEXT`,
    tableColumns: TABLE_COLUMNS,
    tableIndexes: 'SELECT name, "unique" AS isUnique, partial FROM pragma_index_list(?)',
    indexColumns: 'SELECT name FROM pragma_index_info(?)',
    /** Also what the CONFLICT message tells a user to run, to find the rows to merge. */
    duplicateUserNames: `SELECT user_name, COUNT(*) FROM ${name} WHERE user_name <> '' GROUP BY user_name HAVING COUNT(*) > 1`,
    duplicateIds: `SELECT id, COUNT(*) FROM ${name} GROUP BY id HAVING COUNT(*) > 1`,
    selectById: `SELECT ${COLUMN_LIST} FROM ${name} WHERE id = ?`,
    selectByLookup: (field: LookupField) => `SELECT ${COLUMN_LIST} FROM ${name} WHERE ${LOOKUP_WHERE[field]} LIMIT 1`,
    selectAll: `SELECT ${COLUMN_LIST} FROM ${name}`,
    insert: `INSERT INTO ${name} (${COLUMN_LIST}) VALUES (${TOKEN_COLUMNS.map((column) => `@${column}`).join(', ')})`,
    /** Sets only the given columns: SQLite rewrites the index entries of every column it sets, changed or not. */
    update: (columns: readonly TokenColumn[]) =>
      `UPDATE ${name} SET ${columns.map((column) => `${column} = @${column}`).join(', ')} WHERE id = @id`,
    /** The same update, returning the row as stored: for a table whose columns may change what they are given. */
    updateReturning: (columns: readonly TokenColumn[]) =>
      `UPDATE ${name} SET ${columns.map((column) => `${column} = @${column}`).join(', ')} WHERE id = @id RETURNING ${COLUMN_LIST}`,
    deleteById: `DELETE FROM ${name} WHERE id = ?`,
    deleteAll: `DELETE FROM ${name}`,
  };
}

/** The lease table of `withLock`, beside the token table: its name is the validated token table name plus `_locks`. */
export function lockTableName(table: string): string {
  return `${table}_locks`;
}

/**
 * The lease table's key for a lock key: the sha256 (hex) of its UTF-16 code units, so a key of any length or
 * content becomes a fixed 64 characters, and two keys that differ only in a lone surrogate stay apart
 * (UTF-8 would turn both into U+FFFD).
 */
export function lockKey(key: string): string {
  return createHash('sha256').update(key, 'utf16le').digest('hex');
}

/** The columns the lease table must have; a table of that name with others is not ours (a token table named so). */
export const LOCK_COLUMNS = ['lock_key', 'owner', 'expires_at'] as const;

/**
 * The statements of `withLock`. `lock_key` is the sha256 of the key (never the key itself), `owner` a random
 * token per acquisition, `expires_at` the end of the lease in epoch milliseconds. Each step is one statement,
 * so SQLite's write lock makes it atomic across connections and processes.
 */
export function lockSql(table: string) {
  const name = quote(lockTableName(table));
  return {
    createTable: `CREATE TABLE IF NOT EXISTS ${name} (lock_key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at INTEGER NOT NULL)`,
    /** Inserts the lease, or takes over one whose lease ran out; `changes` is 1 only when this owner got it. */
    acquire:
      `INSERT INTO ${name} (lock_key, owner, expires_at) VALUES (@key, @owner, @expiresAt) ` +
      `ON CONFLICT (lock_key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at WHERE ${name}.expires_at < @now`,
    /** Compare-and-expire: only this owner's lease, and only while it has not run out. */
    renew: `UPDATE ${name} SET expires_at = @expiresAt WHERE lock_key = @key AND owner = @owner AND expires_at >= @now`,
    /** Compare-and-delete: never another owner's lease. */
    release: `DELETE FROM ${name} WHERE lock_key = @key AND owner = @owner`,
  };
}

/**
 * Brings the table up to what the store needs and returns nothing; with `create` false it only checks.
 * Creates the table when absent and adds the indexes it lacks, and the lease table of `withLock` beside it,
 * leaving existing rows and columns alone.
 * Checks first and writes only when something is missing, so a complete schema opens on a read-only file.
 */
export function ensureSchema(database: Database.Database, table: string, create: boolean): void {
  const sql = tokenSql(table);
  const missingWork = (): string[] => {
    // A table named like the lease table but not shaped like it is left alone: withLock reports it.
    const lockWork = tableColumns(database, lockTableName(table)).length === 0 ? [lockSql(table).createTable] : [];
    const columns = tableColumns(database, table);
    if (columns.length === 0) return [sql.createTable, sql.createUserNameIndex, ...sql.createTokenIndexes, ...lockWork];
    const absent = TOKEN_COLUMNS.filter((column) => !columns.includes(column));
    const addsApiDomain = absent.length === 1 && absent[0] === 'api_domain';
    if (absent.length > 0 && !addsApiDomain) {
      throw TokenStoreError.corrupt(
        { store: STORE_NAME, operation: 'migrate' },
        `table ${table} exists but lacks the columns ${absent.join(', ')}: it is not a Zoho token table`,
      );
    }
    const work = addsApiDomain ? [sql.addApiDomain, ...lockWork] : lockWork;
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
    for (const [position, column] of TOKEN_INDEX_COLUMNS.entries()) {
      if (!has(column)) work.push(sql.createTokenIndexes[position] as string);
    }
    return work;
  };
  const work = missingWork();
  if (work.length === 0) return;
  if (!create || database.readonly) {
    // Missing indexes only cost speed (BEGIN IMMEDIATE alone keeps one token per user), and a missing lease
    // table only withLock (which then says what to run); a missing token table or column would make every
    // statement fail.
    if (work.includes(sql.createTable) || work.includes(sql.addApiDomain)) {
      throw TokenStoreError.failure(
        { store: STORE_NAME, operation: 'migrate' },
        `table ${table} is missing or lacks api_domain, and ${create ? 'a read-only database cannot be changed' : 'createSchema is false'}`,
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
          if (!driverErrorCode(error).startsWith('SQLITE_CONSTRAINT')) throw error;
          const column = statement === sql.createIdIndex ? 'id' : 'user_name';
          throw TokenStoreError.conflict(
            { store: STORE_NAME, operation: 'migrate', cause: error },
            `table ${table} holds several rows with the same ${column}, so the unique index on ${column} cannot be created; ` +
              `nothing was changed. Find them with: ${column === 'id' ? sql.duplicateIds : sql.duplicateUserNames}, then delete or merge the extra rows`,
          );
        }
      }
    })
    .immediate();
}

/**
 * True when every token column of `table` keeps a text exactly as given: its declared type has TEXT affinity,
 * or none (BLOB or no type), by SQLite's rules (a type containing INT is INTEGER before anything else). A
 * column with INTEGER, REAL or NUMERIC affinity turns text such as '0123' into a number, so what a save wrote
 * is known only by reading it back. `expiry_time` is left out: the store writes a number there, and reads
 * back the same number under any affinity.
 */
export function keepsTextAsGiven(database: Database.Database, table: string): boolean {
  const columns = database.prepare('SELECT name, type FROM pragma_table_info(?)').all(table) as Array<{ name: string; type: string }>;
  return columns.every(({ name, type }) => {
    if (name === 'expiry_time' || !(TOKEN_COLUMNS as readonly string[]).includes(name)) return true;
    const declared = type.toUpperCase();
    if (declared.includes('INT')) return false;
    return declared === '' || /CHAR|CLOB|TEXT|BLOB/.test(declared);
  });
}

/** The column names of `table`, none when it does not exist. */
export function tableColumns(database: Database.Database, table: string): string[] {
  return database.prepare(TABLE_COLUMNS).pluck().all(table) as string[];
}
