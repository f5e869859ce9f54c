/**
 * Everything about the table in one place: the name check and quoting, the schema this store creates, what
 * `migrate()` changes on an existing (Zoho) table, the column size limits, and every SQL text the store runs.
 */
import { createHash } from 'node:crypto';
import { LOOKUP_COLUMNS, type LookupField, nameOption, TOKEN_COLUMNS, type TokenColumn, type TokenRow } from '@crm/core/store-kit';

export const STORE_NAME = 'MySQLTokenStore';
/** Zoho DBStore's defaults. */
export const DEFAULT_TABLE = 'oauthtoken';
export const DEFAULT_URL = 'mysql://root@localhost:3306/zohooauth';

/** Unquoted MySQL identifier characters only, optionally `database.table`; anything else is refused. */
const TABLE_NAME = /^[A-Za-z0-9_$]{1,64}(\.[A-Za-z0-9_$]{1,64})?$/;

/** A table name, optionally `database.table`. */
export interface TableName {
  database: string | null;
  table: string;
  /** Backtick-quoted for SQL text: `db`.`table`. */
  quoted: string;
}

export function parseTableName(name: unknown): TableName {
  const checked = nameOption(
    name,
    'table',
    DEFAULT_TABLE,
    TABLE_NAME,
    '1-64 letters, digits, _ or $, optionally prefixed by a database name and a dot',
    STORE_NAME,
  );
  const [first, second] = checked.split('.') as [string, string | undefined];
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
/** Collations under which `=` and a unique index compare exactly (binary and NO PAD). */
const EXACT_COLLATION = /_0900_bin$|_nopad_bin$/;

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
  /** 'YES' or 'NO'. */
  IS_NULLABLE?: string;
  /** `auto_increment` for such a column (a team's own table may have one beside Zoho's columns). */
  EXTRA?: string | null;
}

/** One row of information_schema.STATISTICS for this table. */
export interface IndexInfo {
  INDEX_NAME: string;
  COLUMN_NAME: string;
  SEQ_IN_INDEX: number | string;
  NON_UNIQUE: number | string;
}

export const COLUMNS_QUERY =
  'SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, CHARACTER_MAXIMUM_LENGTH, COLLATION_NAME, IS_NULLABLE, EXTRA FROM information_schema.COLUMNS ' +
  'WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?';
export const INDEXES_QUERY =
  'SELECT INDEX_NAME, COLUMN_NAME, SEQ_IN_INDEX, NON_UNIQUE FROM information_schema.STATISTICS ' +
  'WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?';
/**
 * How many BEFORE INSERT or BEFORE UPDATE triggers the table has (see `TableShape.beforeTriggers`). MariaDB
 * shows them to a user with any privilege on the table; MySQL documents that only a user with the TRIGGER
 * privilege sees them. Values: database (or null), table.
 */
const BEFORE_TRIGGERS_COUNT =
  "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = COALESCE(?, DATABASE()) AND EVENT_OBJECT_TABLE = ? AND ACTION_TIMING = 'BEFORE' AND EVENT_MANIPULATION IN ('INSERT', 'UPDATE')";
export const BEFORE_TRIGGERS_QUERY = `${BEFORE_TRIGGERS_COUNT.replace('SELECT COUNT(*)', 'SELECT COUNT(*) AS n')}`;
export const COLLATIONS_QUERY = `SELECT COLLATION_NAME FROM information_schema.COLLATIONS WHERE COLLATION_NAME IN (${COLLATION_PREFERENCE.map(() => '?').join(', ')})`;

const TEXT_BYTES: Record<string, number> = { tinytext: 255, text: 65535, mediumtext: 16777215, longtext: 4294967295 };

/** How much one column holds: characters for varchar/char, bytes for text types (MySQL's own units). */
export interface ColumnLimit {
  limit: number;
  unit: 'characters' | 'bytes';
}

/** What the store must know about the real table before it writes. */
export interface TableShape {
  limits: Map<TokenColumn, ColumnLimit | null>;
  /**
   * True when user_name has a unique index of its own and both keys compare exactly: then a save that names
   * its user is one INSERT ... ON DUPLICATE KEY UPDATE. On Zoho's table (no such index, case-insensitive
   * collation) every save takes the locked path.
   */
  upsertByUserName: boolean;
  /** True when ids compare exactly: a save by id may then address its row with `WHERE id = ?` alone. */
  exactId: boolean;
  /**
   * True when a PRIMARY or UNIQUE index covers `id` alone and `id` is NOT NULL. The one-statement saves need
   * both: without the key an `ON DUPLICATE KEY UPDATE` never meets the stored row (a save by id would insert a
   * second row with that id), and their guards fail the statement by setting `id` to NULL.
   */
  uniqueId: boolean;
  /**
   * True on MariaDB 10.5 and later: `INSERT ... RETURNING` (with `ON DUPLICATE KEY UPDATE` it returns the row
   * as stored) and `SET STATEMENT ... FOR`, so a save is one statement with no transaction around it.
   */
  returning: boolean;
  /**
   * True when the table has a BEFORE INSERT or BEFORE UPDATE trigger. The one-statement saves and the upsert
   * refuse to write by setting the id to NULL, which such a trigger may replace (one that fills in a missing
   * id is common): every save then takes the locked path.
   */
  beforeTriggers: boolean;
  /**
   * True when the table has an AUTO_INCREMENT column. MySQL's upsert tells an update from an insert by the
   * insert id it reports, which such a column sets on every insert: saves on MySQL then take the locked path.
   */
  autoIncrement: boolean;
}

/** MariaDB 10.5 and later; MySQL (8.x included) has no `INSERT ... RETURNING`. */
export function supportsReturning(serverVersion: string): boolean {
  const match = /^(\d+)\.(\d+)/.exec(serverVersion);
  if (match === null || !/mariadb/i.test(serverVersion)) return false;
  const [major, minor] = [Number(match[1]), Number(match[2])];
  return major > 10 || (major === 10 && minor >= 5);
}

/** The shape of the real table, or the names of the columns Zoho's tables have and it lacks. */
export function tableShape(
  columns: ColumnInfo[],
  indexes: IndexInfo[],
  serverVersion: string,
  beforeTriggers: number,
): TableShape | { missing: TokenColumn[] } {
  const byName = new Map(columns.map((column) => [column.COLUMN_NAME.toLowerCase(), column]));
  const missing = TOKEN_COLUMNS.filter((column) => !byName.has(column));
  if (missing.length > 0) return { missing };
  const limits = new Map<TokenColumn, ColumnLimit | null>();
  for (const column of TOKEN_COLUMNS) {
    const info = byName.get(column)!;
    const type = info.DATA_TYPE.toLowerCase();
    const declared = info.CHARACTER_MAXIMUM_LENGTH === null ? null : Number(info.CHARACTER_MAXIMUM_LENGTH);
    if (type in TEXT_BYTES) limits.set(column, { limit: TEXT_BYTES[type]!, unit: 'bytes' });
    else if (type === 'varbinary' || type === 'binary' || type.endsWith('blob'))
      limits.set(column, declared === null ? null : { limit: declared, unit: 'bytes' });
    else limits.set(column, declared === null ? null : { limit: declared, unit: 'characters' });
  }
  const exact = (column: TokenColumn) => {
    const collation = byName.get(column)!.COLLATION_NAME;
    return collation === null || EXACT_COLLATION.test(collation);
  };
  return {
    limits,
    upsertByUserName: hasUniqueIndexOn('user_name', indexes) && exact('user_name') && exact('id'),
    exactId: exact('id'),
    uniqueId: hasUniqueIndexOn('id', indexes) && byName.get('id')!.IS_NULLABLE?.toUpperCase() === 'NO',
    returning: supportsReturning(serverVersion),
    beforeTriggers: beforeTriggers > 0,
    autoIncrement: columns.some((column) => /auto_increment/i.test(column.EXTRA ?? '')),
  };
}

/** True when a unique index covers exactly this one column (a longer unique index allows duplicate values). */
function hasUniqueIndexOn(column: TokenColumn, indexes: IndexInfo[]): boolean {
  return indexes.some(
    (index) =>
      Number(index.SEQ_IN_INDEX) === 1 &&
      index.COLUMN_NAME.toLowerCase() === column &&
      Number(index.NON_UNIQUE) === 0 &&
      indexes.filter((other) => other.INDEX_NAME === index.INDEX_NAME).length === 1,
  );
}

/** The first column whose value does not fit, checked before anything is written (MySQL may truncate silently). */
export function findTooLong(row: TokenRow, shape: TableShape): { column: TokenColumn; limit: number } | null {
  for (const column of TOKEN_COLUMNS) {
    const value = row[column];
    const limit = shape.limits.get(column);
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
  // An index counts when its first column is the lookup column (a unique index of its own for user_name).
  for (const [name, spec] of Object.entries(INDEXES)) {
    const [column, unique] = spec;
    const present = unique
      ? hasUniqueIndexOn(column, indexes)
      : indexes.some((index) => Number(index.SEQ_IN_INDEX) === 1 && index.COLUMN_NAME.toLowerCase() === column);
    if (!present) clauses.push(`ADD ${indexSql(name, spec)}`);
  }
  return clauses;
}

/** The column list of every SELECT and INSERT, in Zoho's order. */
const COLUMN_LIST = TOKEN_COLUMNS.join(', ');
const UPDATED_COLUMNS = TOKEN_COLUMNS.filter((column) => column !== 'id');
const PLACEHOLDERS = TOKEN_COLUMNS.map(() => '?').join(', ');

/**
 * What every one-statement save (MariaDB) runs under, whatever the session's defaults: strict mode, so a value
 * the column cannot hold is an error that leaves the row as it was (a warning could not be undone: there is no
 * transaction to roll back), and the server ends the statement, lock waits included, once the operation's time
 * is up (value: seconds), so a save reported as failed cannot be applied afterwards.
 */
const ONE_STATEMENT = "SET STATEMENT max_statement_time = CAST(? AS DOUBLE), sql_mode = 'STRICT_ALL_TABLES', time_zone = '+00:00' FOR ";

/**
 * The server-side deadline of a one-statement save: true while the server's clock (read when the condition is
 * evaluated, SYSDATE, not the statement's start) is before the save's deadline, given as unix seconds in the
 * server's time (see `serverDeadline` in the store). `max_statement_time` counts from when the statement starts,
 * so it cannot stop a statement whose packet reached the server late (a stalled network, a frozen server): this
 * condition does. UNIX_TIMESTAMP under the statement's UTC time zone: no daylight-saving hour to misread.
 */
const BEFORE_DEADLINE = 'UNIX_TIMESTAMP(SYSDATE(6)) < CAST(? AS DECIMAL(17,6))';

/**
 * After a one-statement save that wrote nothing: whether the server's clock is still before the save's deadline
 * (1: the statement was not stopped by the deadline, which cannot have passed yet, but by another guard), and
 * whether the session commits each statement (0: the failed statement left a transaction open). Values: the deadline.
 */
export const AFTER_NO_WRITE = `SET STATEMENT time_zone = '+00:00' FOR SELECT ${BEFORE_DEADLINE} AS in_time, @@autocommit AS autocommit, @@in_transaction AS in_transaction`;

/**
 * The server's clock as unix seconds (with microseconds), to learn its offset from this process's clock, and,
 * in the same round trip, whether the table has BEFORE triggers by now (a trigger created while the store
 * runs is seen within a clock measurement's age). Values: database (or null), table.
 */
export const SERVER_CLOCK = `SET STATEMENT time_zone = '+00:00' FOR SELECT UNIX_TIMESTAMP(SYSDATE(6)) AS now, (${BEFORE_TRIGGERS_COUNT}) AS before_triggers`;

/**
 * A stored `expiry_time` that `parseExpiryTime` reads: a whole number of at most 16 digits within ±8.64e15.
 * (It also trims whitespace; a value with whitespace around it fails here, and the general save handles it.)
 */
const EXPIRY_TIME_PATTERN = '^-?([0-9]{1,15}|[0-7][0-9]{15}|8[0-5][0-9]{14}|86[0-3][0-9]{13}|8640000000000000)$';

/**
 * True when the stored row (`t`'s columns, before the update assigns any but `id`) reads back as a token
 * (`tokenFromRow`): an id, no NUL in any column (the binary concatenation keeps columns of different collations
 * comparable), an empty expiry_time or one `EXPIRY_TIME_PATTERN` accepts. The one-statement saves must never
 * overwrite a row that cannot be read (the contract: CORRUPT_DATA, nothing changed): where this is false their
 * first assignment sets the id to NULL, which fails the statement, and the general save reports CORRUPT_DATA.
 * Never true for a row `tokenFromRow` rejects; false for a few it reads, which then take the general save.
 */
function readableRow(t: string): string {
  const columns = TOKEN_COLUMNS.map((column) => `${t}.${column}`).join(', ');
  return (
    `${t}.id <> '' AND INSTR(CONCAT_WS(X'', ${columns}), X'00') = 0 AND ` +
    `(${t}.expiry_time IS NULL OR CHAR_LENGTH(${t}.expiry_time) = 0 OR ${t}.expiry_time REGEXP '${EXPIRY_TIME_PATTERN}')`
  );
}

/**
 * The condition under which a one-statement save makes its row at all (MariaDB): the session commits each
 * statement by itself. With autocommit off (a pool's connection setup, the server's init_connect or default, a
 * session reset), or inside a transaction someone left open on a shared connection (`START TRANSACTION`), the
 * write would stay uncommitted, its row locks held. In the WHERE of
 * the SELECT that makes the row, not as a NULL id: a BEFORE INSERT trigger can fill in a NULL id, but cannot
 * make a row the SELECT did not.
 */
const AUTOCOMMITTING = '@@autocommit = 1 AND @@in_transaction = 0';

/** A row as mysql2 returns it. */
export type StoredRow = Partial<Record<TokenColumn, string | number | null>>;

/** Every statement the store runs on one table. Values are always parameters; the name is validated and quoted. */
export function statements(table: TableName) {
  const t = table.quoted;
  const select = `SELECT ${COLUMN_LIST} FROM ${t}`;
  const selectBy = Object.fromEntries(
    Object.entries(LOOKUP_COLUMNS).map(([field, column]) => [field, `${select} WHERE ${column} = ?`]),
  ) as Record<LookupField, string>;
  const keepAbsent = (column: string) => `${t}.${column} = COALESCE(VALUES(${column}), ${t}.${column})`;
  // The deadline is checked twice: on the row to insert (nothing to insert past it), and again in the update
  // branch, after any wait for the existing row's lock, where a NULL id fails the statement (ER_BAD_NULL_ERROR).
  const readable = readableRow(t);
  const upsertReturning = (freshId: boolean) =>
    `${ONE_STATEMENT}INSERT INTO ${t} (${COLUMN_LIST}) SELECT ${PLACEHOLDERS} ` +
    `FROM DUAL WHERE ${BEFORE_DEADLINE} AND ${AUTOCOMMITTING} ON DUPLICATE KEY UPDATE ` +
    [
      `${t}.id = IF(${freshId ? `${t}.user_name <=> VALUES(user_name) AND ` : ''}${BEFORE_DEADLINE} AND ${readable}, ${t}.id, NULL)`,
      ...UPDATED_COLUMNS.map(keepAbsent),
    ].join(', ') +
    ` RETURNING ${COLUMN_LIST}`;
  const upsertReturningFreshId = upsertReturning(true);
  const upsertReturningGivenId = upsertReturning(false);
  return {
    /** No LIMIT 1: on a case-insensitive (Zoho) table this also returns case variants; the store keeps the exact one. */
    selectBy,
    selectById: `${select} WHERE id = ?`,
    selectAll: select,
    /** The byte comparison keeps a case-insensitive (Zoho) table from deleting 'ABC' for 'abc'. */
    deleteById: `DELETE FROM ${t} WHERE id = ? AND CAST(id AS BINARY) = CAST(? AS BINARY)`,
    deleteAll: `DELETE FROM ${t}`,
    /**
     * A save that names its user, on a table with an exact unique user name index, where the server has no
     * `RETURNING` (MySQL), inside a transaction (values: `upsertValues`).
     * A duplicate id updates that token (renaming it; CONFLICT if another token has the name), else a duplicate
     * user name updates that user's token, keeping its id; absent fields keep their stored values.
     * `LAST_INSERT_ID(1)` runs only in the update branch: the statement then reports insertId 1, an insert 0.
     * A stored row that cannot be read is never updated (`readableRow`): its id set to NULL fails the statement
     * (ER_BAD_NULL_ERROR; a warning in a non-strict session), and the general save reports CORRUPT_DATA.
     * (Nested, not `readable AND LAST_INSERT_ID(1)`: MariaDB then reports insertId 1 for an insert too.)
     * `INSERT ... SELECT`, not `VALUES`: MariaDB then refuses the NULL id before a BEFORE UPDATE trigger could
     * put a value back (with `VALUES` such a trigger can; MySQL 8's order is untested here).
     */
    upsert:
      `INSERT INTO ${t} (${COLUMN_LIST}) SELECT ${PLACEHOLDERS} FROM DUAL ON DUPLICATE KEY UPDATE ` +
      [
        `${t}.id = IF(${readable}, IF(LAST_INSERT_ID(1), ${t}.id, ${t}.id), NULL)`,
        ...UPDATED_COLUMNS.map((column) => `${t}.${column} = COALESCE(?, ${t}.${column})`),
      ].join(', '),
    /**
     * MariaDB: a save that names its user in one statement, which returns the row as stored (values: the
     * statement's seconds, the token's values, then the server-time deadline twice). Past the deadline it
     * writes nothing: the row to insert is not made (no row returned), or, checked again in the update branch
     * after any wait for the row's lock, ER_BAD_NULL_ERROR. A duplicate id updates that token (renaming it; CONFLICT
     * if another token has the name), else a duplicate user name updates that user's token, keeping its id;
     * absent fields keep their stored values. With a `freshId` the store made up, a duplicate id belongs to
     * another token, never to be renamed: its id is set to NULL, which fails the statement (ER_BAD_NULL_ERROR).
     * The guard comes first: MariaDB assigns left to right, so it sees the stored user name. The same assignment
     * refuses a stored row that cannot be read (`readableRow`). A session that does not autocommit makes no
     * row either (`AUTOCOMMITTING`); the store tells that and the deadline apart with `AFTER_NO_WRITE`. (MariaDB
     * checks the NULL id of the update branch before any BEFORE UPDATE trigger runs, and the SELECT makes no
     * row for a BEFORE INSERT trigger to fill in.)
     */
    upsertReturning: (freshId: boolean) => (freshId ? upsertReturningFreshId : upsertReturningGivenId),
    /**
     * MariaDB: a save by id in one statement, for the token with that id only: the SELECT locks and reads
     * that row, so the INSERT always meets it and updates it, and without such a row nothing is written and
     * no row returned (the store then runs the general save). The row it read always takes the update branch,
     * whose first assignment checks the server-time deadline once the row is locked: past it the id is NULL,
     * which fails the statement (ER_BAD_NULL_ERROR, nothing written), so an empty answer always means "no such
     * token" or a session without autocommit (`AUTOCOMMITTING`: no row read, none locked), never the deadline.
     * Its guard against an unreadable stored row is `upsertReturning`'s. Values: the statement's seconds, the
     * token's values without its id, the id, then the deadline.
     */
    updateByIdReturning:
      `${ONE_STATEMENT}INSERT INTO ${t} (${COLUMN_LIST}) SELECT stored.id, ${UPDATED_COLUMNS.map(() => '?').join(', ')} ` +
      `FROM ${t} AS stored WHERE stored.id = ? AND ${AUTOCOMMITTING} FOR UPDATE ON DUPLICATE KEY UPDATE ` +
      [`${t}.id = IF(${BEFORE_DEADLINE} AND ${readable}, ${t}.id, NULL)`, ...UPDATED_COLUMNS.map(keepAbsent)].join(', ') +
      ` RETURNING ${COLUMN_LIST}`,
    /** The row an upsert updated, read back inside its transaction (it holds that row's lock). */
    selectByUserName: `${select} WHERE user_name = ?`,
    /** The rows a locked save could touch: `conditions` are `column = ?` joined by OR. */
    selectForSave: (columns: string[]) => `${select} WHERE ${columns.map((column) => `${column} = ?`).join(' OR ')} FOR UPDATE`,
    insert: `INSERT INTO ${t} (${COLUMN_LIST}) VALUES (${PLACEHOLDERS})`,
    /** Values: the row without its id, then the stored id. */
    update: `UPDATE ${t} SET ${UPDATED_COLUMNS.map((column) => `${column} = ?`).join(', ')} WHERE id = ?`,
    /**
     * One named lock per table and server, taken by locked saves in every process. SHA1 keeps the name
     * within MySQL's 64 characters. Values: database (or null), table, seconds to wait.
     */
    getLock: "SELECT GET_LOCK(CONCAT('crm:', SHA1(CONCAT(COALESCE(?, DATABASE()), '.', ?))), ?) AS locked",
    releaseLock: "SELECT RELEASE_LOCK(CONCAT('crm:', SHA1(CONCAT(COALESCE(?, DATABASE()), '.', ?)))) AS released",
    /** Locked saves read and lock only the rows they match: no gap locks to deadlock on, whatever the session's default. */
    readCommittedNext: 'SET TRANSACTION ISOLATION LEVEL READ COMMITTED',
    emptyUserNamesToNull: `UPDATE ${t} SET user_name = NULL WHERE user_name = ''`,
    alter: (clauses: string[]) => `ALTER TABLE ${t} ${clauses.join(', ')}`,
  };
}

/** The parameters of `upsert`: every column for the INSERT, then every column but the id for the UPDATE. */
export function upsertValues(values: (string | null)[]): (string | null)[] {
  return [...values, ...values.slice(1)];
}

/**
 * `withLock`'s named lock: `crm-lock:` and 55 hex characters of sha256 over the database, the table and the
 * key, 64 characters in all (MySQL's limit). The database may only be known to the server (`DATABASE()`), so
 * the server hashes it with `lockDigest`, which JavaScript computes from the table and the key: the key
 * reaches the server only as a parameter, and only hashed. The `crm-lock:` prefix keeps these names apart
 * from the `crm:` lock of locked saves.
 */
const LOCK_NAME = "CONCAT('crm-lock:', LEFT(SHA2(CONCAT(COALESCE(?, DATABASE(), ''), '/', ?), 256), 55))";

/** The part of a lock name JavaScript computes: sha256 (hex) of the table and the key. */
export function lockDigest(table: TableName, key: string): string {
  return createHash('sha256')
    .update(JSON.stringify([table.table, key]))
    .digest('hex');
}

export const LOCK_STATEMENTS = {
  /**
   * Tries once, without waiting, to take the lock, and in the same statement, only when it did, makes the
   * server close this session once it has been idle for the lease (a holder that froze or lost its network):
   * no moment in which the lock is held by a session without that bound. Values: database (or null),
   * `lockDigest`, the lease in whole seconds.
   */
  tryLock: `SET SESSION wait_timeout = IF(GET_LOCK(${LOCK_NAME}, 0) = 1, CAST(? AS UNSIGNED), @@SESSION.wait_timeout)`,
  /** Whether the try took it (1), and the lock's name. Values: database (or null), `lockDigest`. */
  tookLock: `SELECT lock_name.name, IS_USED_LOCK(lock_name.name) = CONNECTION_ID() AS held FROM (SELECT ${LOCK_NAME} AS name) AS lock_name`,
  /** 1 while this session holds the named lock. Values: the name. */
  stillHeld: 'SELECT IS_USED_LOCK(?) = CONNECTION_ID() AS held',
  /** Frees the lock only if this session holds it. Values: the name. */
  release: 'SELECT RELEASE_LOCK(?) AS released',
};
