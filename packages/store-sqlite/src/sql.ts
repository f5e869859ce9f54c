import {
  type LookupField,
  type OAuthToken,
  TOKEN_COLUMNS,
  type TokenColumn,
  type TokenRow,
  TokenStoreError,
  type TokenStoreOperation,
  tokenFromRow,
  tokenToRow,
} from '@crm/core';

/** The name every error of this package carries. */
export const STORE = 'SQLiteTokenStore';

/** Zoho's default table name (the SQLite sample and the MySQL DBStore). */
export const DEFAULT_TABLE = 'oauthtoken';

const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * A table name becomes part of SQL text (SQLite cannot bind identifiers), so only plain identifiers are
 * accepted; `sqlite_` names are reserved by SQLite itself.
 */
export function checkTableName(table: unknown): string {
  if (typeof table !== 'string' || !TABLE_NAME.test(table) || table.toLowerCase().startsWith('sqlite_')) {
    throw TokenStoreError.invalidArgument(
      { store: STORE, operation: 'open' },
      'table must be an identifier: a letter or underscore, then up to 62 letters, digits or underscores, not starting with sqlite_',
    );
  }
  return table;
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
    createTokenIndexes: (['access_token', 'grant_token', 'refresh_token'] as const).map(
      (column) => `CREATE INDEX IF NOT EXISTS ${index(column)} ON ${name} (${column})`,
    ),
    /** Tables of Zoho SDKs before `api_domain` existed; Zoho's SDKs add the column the same way. */
    addApiDomain: `ALTER TABLE ${name} ADD COLUMN api_domain TEXT`,
    tableColumns: 'SELECT name FROM pragma_table_info(?)',
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
    deleteById: `DELETE FROM ${name} WHERE id = ?`,
    deleteAll: `DELETE FROM ${name}`,
  };
}

/** A row as better-sqlite3 returns it: text, or whatever else a foreign writer put there. */
export type StoredRow = Partial<Record<TokenColumn, string | number | bigint | Buffer | null>>;

/** Row → token. Empty text reads as absent and `expiry_time` text as epoch ms; anything else is CORRUPT_DATA. */
export function rowToToken(row: StoredRow, operation: TokenStoreOperation): OAuthToken {
  for (const column of TOKEN_COLUMNS) {
    if (Buffer.isBuffer(row[column])) throw TokenStoreError.corrupt({ store: STORE, operation }, `stored column ${column} is not text`);
  }
  const token = tokenFromRow(row as Partial<Record<TokenColumn, string | number | bigint | null>>, STORE, operation);
  if (token.id === null) throw TokenStoreError.corrupt({ store: STORE, operation }, 'a stored row has an empty id');
  return token;
}

/** Token → row: the named parameters of `insert` and `update`. Absent fields are NULL, expiry is decimal text. */
export function tokenToParams(token: OAuthToken): TokenRow {
  return tokenToRow(token);
}
