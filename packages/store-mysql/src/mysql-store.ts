import {
  checkIdArgument,
  checkSaveArgument,
  checkTokenArgument,
  copyStoredFields,
  fillAbsentFields,
  LOOKUP_COLUMNS,
  lookupKey,
  matchesLookupKey,
  NETWORK_ERROR_CODES,
  type OAuthToken,
  planSave,
  type TokenColumn,
  type TokenStore,
  TokenStoreError,
  type TokenStoreOperation,
  tokenToRow,
} from '@crm/core';
import type { Pool as CallbackPool } from 'mysql2';
import { createPool, type Pool, type PoolConnection, type PoolOptions, type ResultSetHeader, type RowDataPacket } from 'mysql2/promise';
import {
  COLLATION_PREFERENCE,
  COLLATIONS_QUERY,
  COLUMN_LIST,
  COLUMNS_QUERY,
  type ColumnInfo,
  type ColumnLimits,
  columnLimits,
  createTableSql,
  DEFAULT_TABLE,
  DEFAULT_URI,
  findTooLong,
  INDEXES_QUERY,
  type IndexInfo,
  migrationClauses,
  parseTableName,
  rowToToken,
  STORE_NAME,
  type StoredRow,
  type TableName,
  tokenToValues,
} from './sql.js';

interface CommonOptions {
  /** Table name, optionally `database.table`. Default `oauthtoken`, like Zoho's DBStore. */
  table?: string;
  /** Every operation settles within this many milliseconds (BACKEND_UNAVAILABLE past it). Default 5000. */
  operationTimeoutMs?: number;
  /** Create the table on first use when it does not exist. Default true; false for teams that run `migrate()` themselves. */
  createTable?: boolean;
  /** How many times a save is retried after a deadlock or a lost insert race. Default 10. */
  maxSaveAttempts?: number;
}

export type MySQLTokenStoreOptions =
  /** Your mysql2 pool (promise or callback API); the store never closes it. */
  | (CommonOptions & { pool: Pool | CallbackPool; uri?: never })
  /** A connection URI; the store makes its own pool and ends it in close(). Default Zoho's: root@localhost:3306/zohooauth. */
  | (CommonOptions & { uri?: string; pool?: never; connectionLimit?: number });

/** MySQL/MariaDB error codes that mean "the server could not be reached or did not answer in time". */
const UNAVAILABLE_CODES = new Set([
  ...NETWORK_ERROR_CODES,
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_SERVER_SHUTDOWN',
  'ER_CON_COUNT_ERROR',
  'ER_LOCK_WAIT_TIMEOUT',
  'ER_CONNECTION_KILLED',
]);
/** A save that lost a race with another process: run the whole transaction again. */
const RETRY_CODES = new Set(['ER_LOCK_DEADLOCK', 'ER_DUP_ENTRY']);

interface DriverError {
  code?: string;
  errno?: number;
  fatal?: boolean;
  message?: string;
}

function driverCode(error: unknown): string {
  return typeof error === 'object' && error !== null ? String((error as DriverError).code ?? '') : '';
}

function isCallbackPool(pool: Pool | CallbackPool): pool is CallbackPool {
  return typeof (pool as CallbackPool).promise === 'function';
}

/**
 * Pool settings from `mysql://user:password@host:port/database?option=value`. Missing parts take Zoho
 * DBStore's defaults (root, empty password, localhost, 3306, zohooauth); query options go to mysql2 as they are.
 */
function poolConfigFromUri(uri: string): PoolOptions {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    // No cause: the parser's error carries the URI, password included.
    throw TokenStoreError.invalidArgument(
      { store: STORE_NAME, operation: 'open' },
      'uri must be a mysql://user:password@host:port/database URL',
    );
  }
  const config: Record<string, unknown> = {};
  for (const [name, value] of url.searchParams) {
    try {
      config[name] = JSON.parse(value);
    } catch {
      config[name] = value;
    }
  }
  return {
    ...config,
    host: decodeURIComponent(url.hostname.replace(/^\[|\]$/g, '')) || 'localhost',
    port: Number(url.port || 3306),
    user: decodeURIComponent(url.username) || 'root',
    password: decodeURIComponent(url.password),
    database: decodeURIComponent(url.pathname.slice(1)) || 'zohooauth',
  };
}

/** Marks our own deadline so it is never mistaken for a driver error. */
class Deadline extends Error {}

/**
 * Zoho CRM OAuth tokens in a MySQL or MariaDB table, Zoho DBStore's table included (read and written as it
 * is; `migrate()` widens it). One pool, one query per lookup, one transaction per save.
 */
export class MySQLTokenStore implements TokenStore {
  readonly table: TableName;
  readonly operationTimeoutMs: number;
  private readonly pool: Pool;
  private readonly ownsPool: boolean;
  private readonly createTable: boolean;
  private readonly maxSaveAttempts: number;
  /** The real column sizes, read once (and again after migrate() or a dropped table). */
  private limits: Promise<ColumnLimits> | null = null;
  private knownLimits: ColumnLimits | null = null;
  private closed = false;

  constructor(options: MySQLTokenStoreOptions = {}) {
    const open = { store: STORE_NAME, operation: 'open' } as const;
    if (typeof options !== 'object' || options === null) throw TokenStoreError.invalidArgument(open, 'options must be an object');
    this.table = parseTableName(options.table ?? DEFAULT_TABLE);
    this.operationTimeoutMs = options.operationTimeoutMs ?? 5000;
    this.maxSaveAttempts = options.maxSaveAttempts ?? 10;
    if (!Number.isFinite(this.operationTimeoutMs) || this.operationTimeoutMs <= 0) {
      throw TokenStoreError.invalidArgument(open, 'operationTimeoutMs must be a positive number');
    }
    if (!Number.isInteger(this.maxSaveAttempts) || this.maxSaveAttempts < 1) {
      throw TokenStoreError.invalidArgument(open, 'maxSaveAttempts must be a whole number of at least 1');
    }
    this.createTable = options.createTable ?? true;
    if (options.pool !== undefined) {
      if (typeof options.pool !== 'object' || options.pool === null || typeof options.pool.getConnection !== 'function') {
        throw TokenStoreError.invalidArgument(open, 'pool must be a mysql2 pool');
      }
      this.pool = isCallbackPool(options.pool) ? options.pool.promise() : options.pool;
      this.ownsPool = false;
    } else {
      const connectTimeout = Math.max(1, Math.min(this.operationTimeoutMs, 10000));
      this.pool = createPool({
        ...poolConfigFromUri(options.uri ?? DEFAULT_URI),
        connectTimeout,
        connectionLimit: ('connectionLimit' in options && options.connectionLimit) || 10,
        charset: 'utf8mb4',
        enableKeepAlive: true,
      });
      // Idle pooled connections that the server drops report here; without a listener they would crash the app.
      this.pool.pool.on('error', () => {});
      this.ownsPool = true;
    }
  }

  async findToken(token: OAuthToken): Promise<OAuthToken | null> {
    checkTokenArgument(token, STORE_NAME, 'findToken');
    const key = lookupKey(token);
    if (key === null) return null;
    const column = LOOKUP_COLUMNS[key.field] as TokenColumn;
    // No LIMIT 1: on a case-insensitive (Zoho) table the query also returns case variants; the exact one wins.
    const rows = await this.run('findToken', (connection) =>
      this.select(connection, `SELECT ${COLUMN_LIST} FROM ${this.table.quoted} WHERE ${column} = ?`, [key.value]),
    );
    const row = rows.find((candidate) => candidate[column] === key.value);
    return row === undefined ? null : fillAbsentFields(token, rowToToken(row, 'findToken'));
  }

  async findTokenById(id: string): Promise<OAuthToken | null> {
    checkIdArgument(id, STORE_NAME, 'findTokenById');
    const rows = await this.run('findTokenById', (connection) =>
      this.select(connection, `SELECT ${COLUMN_LIST} FROM ${this.table.quoted} WHERE id = ?`, [id]),
    );
    const row = rows.find((candidate) => candidate.id === id);
    return row === undefined ? null : rowToToken(row, 'findTokenById');
  }

  async getTokens(): Promise<OAuthToken[]> {
    const rows = await this.run('getTokens', (connection) =>
      this.select(connection, `SELECT ${COLUMN_LIST} FROM ${this.table.quoted}`, []),
    );
    return rows.map((row) => rowToToken(row, 'getTokens'));
  }

  async deleteToken(id: string): Promise<void> {
    checkIdArgument(id, STORE_NAME, 'deleteToken');
    // The byte comparison keeps a case-insensitive (Zoho) table from deleting 'ABC' for 'abc'.
    await this.run('deleteToken', (connection) =>
      connection.execute(`DELETE FROM ${this.table.quoted} WHERE id = ? AND CAST(id AS BINARY) = CAST(? AS BINARY)`, [id, id]),
    );
  }

  async deleteTokens(): Promise<void> {
    await this.run('deleteTokens', (connection) => connection.query(`DELETE FROM ${this.table.quoted}`));
  }

  /**
   * One transaction: lock the rows the save could touch (same id, the findToken match, the same user name)
   * with SELECT ... FOR UPDATE, decide with core's planSave, then UPDATE or INSERT. Two processes that both
   * found nothing can deadlock on InnoDB gap locks or race on the unique keys; the loser runs again.
   */
  async saveToken(token: OAuthToken): Promise<void> {
    checkSaveArgument(token, STORE_NAME);
    const stored = await this.run('saveToken', async (connection) => {
      this.checkLengths(token); // before the transaction: a value that cannot fit costs no round trip
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.saveOnce(connection, token);
        } catch (error) {
          await connection.query('ROLLBACK').catch(() => {});
          if (attempt >= this.maxSaveAttempts || !RETRY_CODES.has(driverCode(error))) throw error;
          // Jitter spreads the retries of processes that collided.
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * attempt));
        }
      }
    });
    copyStoredFields(token, stored);
  }

  private async saveOnce(connection: PoolConnection, token: OAuthToken): Promise<OAuthToken> {
    const key = lookupKey(token);
    const conditions: string[] = [];
    const values: string[] = [];
    const lockWhere = (column: string, value: string) => {
      conditions.push(`${column} = ?`);
      values.push(value);
    };
    if (token.id !== null) lockWhere('id', token.id);
    if (key !== null) lockWhere(LOOKUP_COLUMNS[key.field], key.value);
    // The user name this save gives the token: another row holding it means CONFLICT.
    if (token.userName !== null && key?.field !== 'userName') lockWhere('user_name', token.userName);

    await connection.query('START TRANSACTION');
    const rows =
      conditions.length === 0
        ? []
        : await this.select(
            connection,
            `SELECT ${COLUMN_LIST} FROM ${this.table.quoted} WHERE ${conditions.join(' OR ')} FOR UPDATE`,
            values,
          );
    const candidates = rows.map((row) => rowToToken(row, 'saveToken'));
    const plan = planSave(
      {
        findById: (id) => candidates.find((candidate) => candidate.id === id) ?? null,
        findByKey: (lookup) => candidates.find((candidate) => matchesLookupKey(candidate, lookup)) ?? null,
      },
      token,
      STORE_NAME,
    );
    this.checkLengths(plan.stored);
    const row = tokenToValues(plan.stored);
    const [result] =
      plan.replaces === null
        ? await connection.execute<ResultSetHeader>(
            `INSERT INTO ${this.table.quoted} (${COLUMN_LIST}) VALUES (${row.map(() => '?').join(', ')})`,
            row,
          )
        : await connection.execute<ResultSetHeader>(
            `UPDATE ${this.table.quoted} SET ${COLUMN_LIST.split(', ')
              .slice(1)
              .map((column) => `${column} = ?`)
              .join(', ')} WHERE id = ?`,
            [...row.slice(1), plan.replaces.id],
          );
    // Outside strict mode MySQL truncates with only a warning: never keep such a write.
    if (result.warningStatus > 0) {
      this.limits = null; // the checked sizes were stale: read the columns again next time
      throw TokenStoreError.failure(
        { store: STORE_NAME, operation: 'saveToken' },
        'the server would have altered a value (it raised a warning); nothing was written',
      );
    }
    await connection.query('COMMIT');
    return plan.stored;
  }

  /**
   * Brings the table to this store's schema: creates it, or on an existing table (Zoho's DBStore table)
   * adds missing columns, widens secrets to `mediumtext`, switches to a binary collation, stores empty user names
   * as NULL and adds the unique user name index and the token lookup indexes. Idempotent; never narrows.
   * Runs without the operation time bound (an ALTER on a large table takes a while).
   */
  async migrate(): Promise<void> {
    await this.run(
      'migrate',
      async (connection) => {
        const columns = await this.select<ColumnInfo>(connection, COLUMNS_QUERY, [this.table.database, this.table.table]);
        const collation = await this.collation(connection);
        if (columns.length === 0) {
          await connection.query(createTableSql(this.table, collation));
        } else {
          const indexes = await this.select<IndexInfo>(connection, INDEXES_QUERY, [this.table.database, this.table.table]);
          const clauses = migrationClauses(columns, indexes, collation);
          if (clauses.length > 0) {
            await connection.query(`UPDATE ${this.table.quoted} SET user_name = NULL WHERE user_name = ''`);
            await connection.query(`ALTER TABLE ${this.table.quoted} ${clauses.join(', ')}`);
          }
        }
        this.limits = null;
        this.knownLimits = null;
      },
      24 * 3600 * 1000,
    ).catch((error) => {
      if (TokenStoreError.is(error) && error.code === 'CONFLICT') {
        throw TokenStoreError.conflict(
          { store: STORE_NAME, operation: 'migrate', cause: error.cause },
          'the table holds two tokens with one user name; remove one before migrating',
        );
      }
      throw error;
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.ownsPool) return;
    try {
      await this.pool.end();
    } catch (error) {
      throw this.mapError(error, 'close');
    }
  }

  private async select<Row = StoredRow>(connection: PoolConnection, sql: string, values: (string | null)[]): Promise<Row[]> {
    const [rows] = await connection.execute<RowDataPacket[]>(sql, values);
    return rows as Row[];
  }

  private async collation(connection: PoolConnection): Promise<string> {
    const rows = await this.select<{ COLLATION_NAME: string }>(connection, COLLATIONS_QUERY, COLLATION_PREFERENCE);
    const available = new Set(rows.map((row) => row.COLLATION_NAME));
    return COLLATION_PREFERENCE.find((name) => available.has(name)) ?? 'utf8mb4_bin';
  }

  /** VALUE_TOO_LONG, naming the column and its limit, for a value the real column cannot hold. */
  private checkLengths(token: OAuthToken): void {
    const tooLong = this.knownLimits === null ? null : findTooLong(tokenToRow(token), this.knownLimits);
    if (tooLong !== null) throw TokenStoreError.valueTooLong({ store: STORE_NAME, operation: 'saveToken' }, tooLong.column, tooLong.limit);
  }

  /** Reads the real columns (creating the table first when allowed and missing). */
  private async ensureTable(connection: PoolConnection, operation: TokenStoreOperation): Promise<ColumnLimits> {
    const where = [this.table.database, this.table.table];
    let columns = await this.select<ColumnInfo>(connection, COLUMNS_QUERY, where);
    if (columns.length === 0) {
      if (!this.createTable) {
        throw TokenStoreError.failure({ store: STORE_NAME, operation }, 'the table does not exist; run migrate() or set createTable');
      }
      await connection.query(createTableSql(this.table, await this.collation(connection)));
      columns = await this.select<ColumnInfo>(connection, COLUMNS_QUERY, where);
    }
    return columnLimits(columns, operation);
  }

  /**
   * Runs one operation on one pooled connection within the time bound. Past the bound the caller gets
   * BACKEND_UNAVAILABLE at once and the connection is destroyed (the server rolls back whatever it held);
   * a connection that failed is destroyed too, so the pool only keeps healthy ones and recovers by itself.
   */
  private async run<T>(
    operation: TokenStoreOperation,
    work: (connection: PoolConnection) => Promise<T>,
    timeoutMs = this.operationTimeoutMs,
  ): Promise<T> {
    if (this.closed) throw TokenStoreError.failure({ store: STORE_NAME, operation }, 'the store is closed');
    let connection: PoolConnection | null = null;
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        connection?.destroy();
        reject(new Deadline());
      }, timeoutMs);
    });
    const attempt = (async () => {
      const acquired = await this.pool.getConnection();
      if (timedOut) {
        acquired.release();
        throw new Deadline();
      }
      connection = acquired;
      if (this.limits === null && operation !== 'migrate') {
        const reading = this.ensureTable(acquired, operation);
        this.limits = reading;
        reading.then(
          (limits) => {
            if (this.limits === reading) this.knownLimits = limits;
          },
          () => {
            if (this.limits === reading) this.limits = null;
          },
        );
      }
      if (operation !== 'migrate') await this.limits;
      return work(acquired);
    })();
    attempt.catch(() => {}); // after the deadline its failure is already reported
    try {
      const result = await Promise.race([attempt, deadline]);
      (connection as PoolConnection | null)?.release();
      return result;
    } catch (error) {
      // Our own refusals (CONFLICT, VALUE_TOO_LONG...) leave a healthy, rolled-back connection.
      if (TokenStoreError.is(error) && !timedOut) (connection as PoolConnection | null)?.release();
      else if (!timedOut) (connection as PoolConnection | null)?.destroy();
      if (error instanceof Deadline || timedOut) {
        throw TokenStoreError.unavailable({ store: STORE_NAME, operation }, `no answer from the server within ${timeoutMs} ms`);
      }
      throw this.mapError(error, operation);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Driver error -> TokenStoreError. The driver's message can quote values, so it stays in `cause` only. */
  private mapError(error: unknown, operation: TokenStoreOperation): TokenStoreError {
    if (TokenStoreError.is(error)) return error;
    const code = driverCode(error);
    const details = { store: STORE_NAME, operation, cause: error };
    if (code === 'ER_NO_SUCH_TABLE') {
      this.limits = null;
      return TokenStoreError.failure(details, 'the table does not exist (ER_NO_SUCH_TABLE)');
    }
    if (code === 'ER_DATA_TOO_LONG') {
      // Only reached when the checked limits were stale (the table changed under a running store).
      const column = /column '([a-z_]+)'/.exec(String((error as DriverError).message))?.[1] ?? 'unknown';
      this.limits = null;
      return TokenStoreError.valueTooLong(details, column, this.knownLimits?.get(column as TokenColumn)?.limit ?? 0);
    }
    if (code === 'ER_DUP_ENTRY') return TokenStoreError.conflict(details, 'another stored token already has this id or user name');
    if (code === 'ER_TRUNCATED_WRONG_VALUE_FOR_FIELD') {
      return TokenStoreError.failure(
        details,
        "a value has characters the column's character set cannot hold (ER_TRUNCATED_WRONG_VALUE_FOR_FIELD)",
      );
    }
    if (UNAVAILABLE_CODES.has(code) || (error as DriverError | null)?.fatal === true) {
      return TokenStoreError.unavailable(details, `the server could not be reached (${code || 'connection lost'})`);
    }
    return TokenStoreError.failure(details, `the server refused the operation (${code || 'unknown error'})`);
  }
}
