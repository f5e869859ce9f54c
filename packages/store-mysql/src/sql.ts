/**
 * Everything about the table in one place: the name check and quoting, the schema this store creates, what
 * `migrate()` changes on an existing (Zoho) table, the column size limits, and the row <-> token mapping.
 */
import {
  type OAuthToken,
  TOKEN_COLUMNS,
  type TokenColumn,
  type TokenRow,
  TokenStoreError,
  type TokenStoreOperation,
  tokenFromRow,
  tokenToRow,
} from '@crm/core';

export const STORE_NAME = 'MySQLTokenStore';
/** Zoho DBStore's defaults. */
export const DEFAULT_TABLE = 'oauthtoken';
export const DEFAULT_URI = 'mysql://root@localhost:3306/zohooauth';

/** Unquoted MySQL identifier characters only; anything else (quotes, spaces, `;`, backticks) is refused. */
const IDENTIFIER = /^[A-Za-z0-9_$]{1,64}$/;

/** A table name, optionally `database.table`. */
export interface TableName {
  database: string | null;
  table: string;
  /** Backtick-quoted for SQL text: `db`.`table`. */
  quoted: string;
}

export function parseTableName(name: unknown): TableName {
  const parts = typeof name === 'string' ? name.split('.') : [];
  if (parts.length < 1 || parts.length > 2 || !parts.every((part) => IDENTIFIER.test(part))) {
    throw TokenStoreError.invalidArgument(
      { store: STORE_NAME, operation: 'open' },
      'table must be 1-64 letters, digits, _ or $, optionally prefixed by a database name and a dot',
    );
  }
  const [first, second] = parts as [string, string | undefined];
  const database = second === undefined ? null : first;
  const table = second ?? first;
  // Validated above, quoted anyway: the name can never end the identifier.
  const quoted = database === null ? `\`${table}\`` : `\`${database}\`.\`${table}\``;
  return { database, table, quoted };
}

/** Characters of each lookup column that its index covers. Zoho tokens are `1000.<32 hex>.<32 hex>`. */
export const TOKEN_INDEX_PREFIX = 64;

/**
 * The column definitions of a table this store creates, and what `migrate()` widens Zoho's table to.
 * Secrets are `mediumtext` (16 MB): plain `text` stops at 65,535 bytes.
 */
export const COLUMN_TYPES: Record<TokenColumn, string> = {
  id: 'varchar(255)',
  user_name: 'varchar(255)',
  client_id: 'varchar(255)',
  client_secret: 'mediumtext',
  refresh_token: 'mediumtext',
  access_token: 'mediumtext',
  grant_token: 'mediumtext',
  expiry_time: 'varchar(20)',
  redirect_url: 'text',
  api_domain: 'varchar(255)',
};

/** Index name -> [column, unique]. Empty user names are stored as NULL, so the UNIQUE index allows many. */
export const INDEXES: Record<string, [TokenColumn, boolean]> = {
  crm_user_name: ['user_name', true],
  crm_access_token: ['access_token', false],
  crm_refresh_token: ['refresh_token', false],
  crm_grant_token: ['grant_token', false],
};

function indexSql(name: string, [column, unique]: [TokenColumn, boolean]): string {
  return unique ? `UNIQUE KEY \`${name}\` (${column})` : `KEY \`${name}\` (${column}(${TOKEN_INDEX_PREFIX}))`;
}

/** Binary, no-pad collations first: ids and user names compare exactly, `'a'` and `'a '` differ. */
export const COLLATION_PREFERENCE = ['utf8mb4_0900_bin', 'utf8mb4_nopad_bin', 'utf8mb4_bin'];

export function createTableSql(table: TableName, collation: string): string {
  const columns = TOKEN_COLUMNS.map((column) => `  ${column} ${COLUMN_TYPES[column]}${column === 'id' ? ' NOT NULL' : ' NULL'}`);
  const keys = ['  PRIMARY KEY (id)', ...Object.entries(INDEXES).map(([name, spec]) => `  ${indexSql(name, spec)}`)];
  return `CREATE TABLE IF NOT EXISTS ${table.quoted} (\n${[...columns, ...keys].join(',\n')}\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=${collation}`;
}

/** One row of information_schema.COLUMNS for this table. */
export interface ColumnInfo {
  COLUMN_NAME: string;
  DATA_TYPE: string;
  COLUMN_TYPE: string;
  CHARACTER_MAXIMUM_LENGTH: number | string | null;
  COLLATION_NAME: string | null;
}

/** One row of information_schema.STATISTICS for this table. */
export interface IndexInfo {
  INDEX_NAME: string;
  COLUMN_NAME: string;
  SEQ_IN_INDEX: number | string;
  NON_UNIQUE: number | string;
}

export const COLUMNS_QUERY =
  'SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, CHARACTER_MAXIMUM_LENGTH, COLLATION_NAME FROM information_schema.COLUMNS ' +
  'WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?';
export const INDEXES_QUERY =
  'SELECT INDEX_NAME, COLUMN_NAME, SEQ_IN_INDEX, NON_UNIQUE FROM information_schema.STATISTICS ' +
  'WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?';
export const COLLATIONS_QUERY = `SELECT COLLATION_NAME FROM information_schema.COLLATIONS WHERE COLLATION_NAME IN (${COLLATION_PREFERENCE.map(() => '?').join(', ')})`;

const TEXT_BYTES: Record<string, number> = { tinytext: 255, text: 65535, mediumtext: 16777215, longtext: 4294967295 };

/** How much one column holds: characters for varchar/char, bytes for text types (MySQL's own units). */
export interface ColumnLimit {
  limit: number;
  unit: 'characters' | 'bytes';
}

export type ColumnLimits = Map<TokenColumn, ColumnLimit | null>;

/** The limits of the real columns. Throws when a column Zoho's tables have is missing. */
export function columnLimits(columns: ColumnInfo[], operation: TokenStoreOperation): ColumnLimits {
  const byName = new Map(columns.map((column) => [column.COLUMN_NAME.toLowerCase(), column]));
  const missing = TOKEN_COLUMNS.filter((column) => !byName.has(column));
  if (missing.length > 0) {
    throw TokenStoreError.failure(
      { store: STORE_NAME, operation },
      `the table lacks column(s) ${missing.join(', ')}; run migrate() to add them`,
    );
  }
  const limits: ColumnLimits = new Map();
  for (const column of TOKEN_COLUMNS) {
    const info = byName.get(column)!;
    const type = info.DATA_TYPE.toLowerCase();
    const declared = info.CHARACTER_MAXIMUM_LENGTH === null ? null : Number(info.CHARACTER_MAXIMUM_LENGTH);
    if (type in TEXT_BYTES) limits.set(column, { limit: TEXT_BYTES[type]!, unit: 'bytes' });
    else if (type === 'varbinary' || type === 'binary' || type.endsWith('blob'))
      limits.set(column, declared === null ? null : { limit: declared, unit: 'bytes' });
    else limits.set(column, declared === null ? null : { limit: declared, unit: 'characters' });
  }
  return limits;
}

/** The first column whose value does not fit, checked before anything is written (MySQL may truncate silently). */
export function findTooLong(row: TokenRow, limits: ColumnLimits): { column: TokenColumn; limit: number } | null {
  for (const column of TOKEN_COLUMNS) {
    const value = row[column];
    const limit = limits.get(column);
    if (value === null || limit === null || limit === undefined) continue;
    const size = limit.unit === 'bytes' ? Buffer.byteLength(value, 'utf8') : [...value].length;
    if (size > limit.limit) return { column, limit: limit.limit };
  }
  return null;
}

/**
 * What `migrate()` must change on an existing table: columns to add or widen (and to turn to the binary
 * collation, so the unique user name is exact), and missing indexes. Returns the ALTER TABLE clauses.
 */
export function migrationClauses(columns: ColumnInfo[], indexes: IndexInfo[], collation: string): string[] {
  const clauses: string[] = [];
  const byName = new Map(columns.map((column) => [column.COLUMN_NAME.toLowerCase(), column]));
  for (const column of TOKEN_COLUMNS) {
    const target = COLUMN_TYPES[column];
    const nullability = column === 'id' ? ' NOT NULL' : ' NULL';
    const info = byName.get(column);
    if (info === undefined) {
      clauses.push(`ADD COLUMN ${column} ${target} CHARACTER SET utf8mb4 COLLATE ${collation}${nullability}`);
      continue;
    }
    const type = info.DATA_TYPE.toLowerCase();
    const isChars = type === 'varchar' || type === 'char';
    const narrower =
      target in TEXT_BYTES
        ? (TEXT_BYTES[type] ?? 0) < TEXT_BYTES[target]!
        : isChars && Number(info.CHARACTER_MAXIMUM_LENGTH) < Number(/\d+/.exec(target)![0]);
    const otherCollation = info.COLLATION_NAME !== null && info.COLLATION_NAME !== collation;
    // Never narrow a column a team already made wider: keep its type, fix only the collation.
    if (narrower || otherCollation) {
      clauses.push(`MODIFY ${column} ${narrower ? target : info.COLUMN_TYPE} CHARACTER SET utf8mb4 COLLATE ${collation}${nullability}`);
    }
  }
  // An index counts when its first column is the lookup column (a unique one for user_name).
  const leading = indexes.filter((index) => Number(index.SEQ_IN_INDEX) === 1);
  for (const [name, spec] of Object.entries(INDEXES)) {
    const [column, unique] = spec;
    const present = leading.some(
      (index) =>
        index.COLUMN_NAME.toLowerCase() === column &&
        (!unique || (Number(index.NON_UNIQUE) === 0 && indexes.filter((other) => other.INDEX_NAME === index.INDEX_NAME).length === 1)),
    );
    if (!present) clauses.push(`ADD ${indexSql(name, spec)}`);
  }
  return clauses;
}

/** The column list of every SELECT and INSERT, in Zoho's order. */
export const COLUMN_LIST = TOKEN_COLUMNS.join(', ');

/** A row as mysql2 returns it. */
export type StoredRow = Partial<Record<TokenColumn, string | number | null>>;

/** Row -> token (core's mapping: empty text is absent, expiry text -> epoch ms, CORRUPT_DATA on a bad expiry). */
export function rowToToken(row: StoredRow, operation: TokenStoreOperation): OAuthToken {
  return tokenFromRow(row, STORE_NAME, operation);
}

/** Token -> the values of COLUMN_LIST, in order. Absent fields (an absent user name included) are NULL. */
export function tokenToValues(token: OAuthToken): (string | null)[] {
  const row = tokenToRow(token);
  return TOKEN_COLUMNS.map((column) => row[column]);
}
