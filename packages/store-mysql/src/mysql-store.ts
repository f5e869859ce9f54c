import { connect, type Socket } from 'node:net';
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
import type { Pool as CallbackPool, PoolConnection as Connection, ExecuteValues } from 'mysql2';
import { createPool, type Pool, type PoolOptions, type ResultSetHeader, type RowDataPacket } from 'mysql2/promise';
import { destroyConnection, NamedLease } from './lock.js';
import {
  AFTER_NO_WRITE,
  BEFORE_TRIGGERS_QUERY,
  COLLATION_PREFERENCE,
  COLLATIONS_QUERY,
  COLUMNS_QUERY,
  type ColumnInfo,
  createTableSql,
  DEFAULT_URL,
  findTooLong,
  INDEXES_QUERY,
  type IndexInfo,
  lockDigest,
  migrationClauses,
  parseTableName,
  SERVER_CLOCK,
  STORE_NAME,
  type StoredRow,
  statements,
  type TableName,
  type TableShape,
  tableShape,
  upsertValues,
} from './sql.js';

/**
 * One statement on a connection of mysql2's callback API. Its promise API costs more per call than a lookup's
 * own work (it captures a stack trace for every query, ~10 µs); our errors carry their own context anyway.
 */
function execute<T>(connection: Connection, sql: string, values: ExecuteValues[]): Promise<T> {
  return new Promise((resolve, reject) => {
    connection.execute(sql, values, (error: unknown, result: unknown) => (error ? reject(error) : resolve(result as T)));
  });
}

/** A statement that cannot be prepared (transaction control, DDL), as text without values. */
function query<T = ResultSetHeader>(connection: Connection, sql: string): Promise<T> {
  return new Promise((resolve, reject) => {
    connection.query(sql, (error: unknown, result: unknown) => (error ? reject(error) : resolve(result as T)));
  });
}

const isDeadlock = (error: unknown) => kit.driverErrorCode(error) === 'ER_LOCK_DEADLOCK';

/** MySQL's upsert refused the stored row (it cannot be read) or raised a warning: the general save decides. */
class UpsertRefused extends Error {}

/** How long a clock measurement is used before a save measures again (clocks drift, and are set). */
const CLOCK_MAX_AGE_MS = 60_000;
/** The server status flag of a session with a transaction open (mysql2 reports the flags of an OK packet). */
const SERVER_STATUS_IN_TRANS = 1;

/**
 * Makes the session commit each statement by itself. The store's single statements (one-statement saves,
 * deletes) rely on it; locked saves run in explicit transactions either way.
 */
const AUTOCOMMIT_ON = 'SET autocommit = 1';

/** MariaDB's errno when `max_statement_time` ended a statement (mysql2 has no name for it). */
const ER_STATEMENT_TIMEOUT = 1969;

/**
 * The time bound of one operation, kept as the kit's `withDeadline` keeps it (past it: BACKEND_UNAVAILABLE,
 * and `onExpiry` cuts the connection), except that the AbortSignal is made only when a path asks for it (a
 * retry, a lock): creating one costs ~13 µs on Node 20, a third of a lookup's whole round trip.
 */
class Bound {
  expired: TokenStoreError | null = null;
  private finished = false;
  private controller: AbortController | null = null;
  private readonly timer: NodeJS.Timeout;
  /** When the bound ends, on `performance.now()`'s clock. */
  readonly endsAt: number;

  constructor(
    readonly timeoutMs: number,
    operation: TokenStoreOperation,
    onExpiry: (error: TokenStoreError) => void,
  ) {
    this.endsAt = performance.now() + timeoutMs;
    this.timer = setTimeout(() => {
      const error = TokenStoreError.unavailable({ store: STORE_NAME, operation }, `MySQL did not answer within ${timeoutMs} ms`);
      this.expired = error;
      this.controller?.abort(error); // first, so nothing the work does after this moment can still be applied
      onExpiry(error);
    }, timeoutMs);
  }

  get signal(): AbortSignal {
    if (this.controller === null) {
      this.controller = new AbortController();
      if (this.expired !== null) this.controller.abort(this.expired);
    }
    return this.controller.signal;
  }

  /** Milliseconds left. */
  remainingMs(): number {
    return this.endsAt - performance.now();
  }

  /** Ends the bound with the work's outcome: false when the deadline came first (the outcome is no longer anyone's). */
  finish(): boolean {
    if (this.expired !== null || this.finished) return false;
    this.finished = true;
    clearTimeout(this.timer);
    return true;
  }
}

export interface MySQLTokenStoreOptions {
  /** `mysql://user:password@host:port/database?option=value`; the store makes its own pool and ends it in close(). */
  url?: string;
  /** Your mysql2 pool (promise or callback API); the store never closes it. */
  pool?: Pool | CallbackPool;
  /** Table name, optionally `database.table`. Default `oauthtoken`, like Zoho's DBStore. */
  table?: string;
  /** Every operation settles within this many milliseconds (BACKEND_UNAVAILABLE past it). Default 5000. */
  operationTimeoutMs?: number;
  /** How many times a save runs in all when it loses a race (a deadlock). Default 5. */
  maxSaveAttempts?: number;
  /** Create the table on first use when it does not exist. Default true; false for teams that run `migrate()` themselves. */
  createSchema?: boolean;
}

const OPTION_NAMES = ['url', 'pool', 'table', 'operationTimeoutMs', 'maxSaveAttempts', 'createSchema'];
const RENAMED_OPTIONS = {
  uri: 'url',
  createTable: 'createSchema',
  connectionLimit: 'moved into the url: mysql://host/database?connectionLimit=10',
};

/** MySQL/MariaDB error codes that mean "the server could not be reached or did not answer in time". */
const UNAVAILABLE_CODES = new Set([
  ...kit.NETWORK_ERROR_CODES,
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_SERVER_SHUTDOWN',
  'ER_CON_COUNT_ERROR',
  'ER_LOCK_WAIT_TIMEOUT',
  // Only after every retry lost again: the table is busy, try later.
  'ER_LOCK_DEADLOCK',
  'ER_CONNECTION_KILLED',
]);

/** How long close() lets the server answer its goodbyes before it cuts the sockets that remain. */
const CLOSE_GRACE_MS = 500;

/** A duplicate of the primary key (MySQL 8 names it `table.PRIMARY`), as opposed to the user name index. */
function isDuplicateId(error: unknown): boolean {
  return kit.driverErrorCode(error) === 'ER_DUP_ENTRY' && /for key '(?:[^']*\.)?PRIMARY'/.test(kit.driverErrorMessage(error));
}

/** A fresh id that happened to be another token's id: run the save again with another id. */
class IdCollision extends Error {}

function isCallbackPool(pool: Pool | CallbackPool): pool is CallbackPool {
  return typeof (pool as CallbackPool).promise === 'function';
}

const URL_PART_OPTIONS = ['user', 'password', 'host', 'port', 'database'];

/**
 * Pool settings from `mysql://user:password@host:port/database?option=value`. Missing parts take Zoho
 * DBStore's defaults (root, empty password, localhost, 3306, zohooauth); query options go to mysql2 as they are.
 */
function poolConfigFromUrl(url: URL): PoolOptions {
  const config: Record<string, unknown> = {};
  for (const [name, value] of url.searchParams) {
    // The URL's own parts set these below: a query copy would be dropped without a word.
    if (URL_PART_OPTIONS.includes(name)) {
      throw TokenStoreError.invalidArgument(
        { store: STORE_NAME, operation: 'open' },
        `url: give the ${name} in the URL itself (mysql://user:password@host:port/database), not as a query parameter`,
      );
    }
    try {
      config[name] = JSON.parse(value);
    } catch {
      config[name] = value;
    }
  }
  return {
    ...config,
    host: decodeUrlPart(url.hostname.replace(/^\[|\]$/g, '')) || 'localhost',
    port: Number(url.port || 3306),
    user: decodeUrlPart(url.username) || 'root',
    password: decodeUrlPart(url.password),
    database: decodeUrlPart(url.pathname.slice(1)) || 'zohooauth',
  };
}

/** A percent-encoded part of the url; a bad escape (`50%off`) is INVALID_ARGUMENT that never repeats the url. */
function decodeUrlPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw TokenStoreError.invalidArgument(
      { store: STORE_NAME, operation: 'open' },
      'url: the user, password, host or database is not valid percent-encoding (write % as %25)',
    );
  }
}

/**
 * Zoho CRM OAuth tokens in a MySQL or MariaDB table, Zoho DBStore's table included (read and written as it
 * is; `migrate()` widens it). One pool, one query per lookup; on MariaDB a save by user name (on a table with
 * a unique user name index) or by id is one statement, on MySQL a save by user name one upsert in a
 * transaction, and any other save one transaction under a named lock.
 */
export class MySQLTokenStore implements TokenStore, TokenLocking {
  readonly table: TableName;
  readonly operationTimeoutMs: number;
  private readonly sql: ReturnType<typeof statements>;
  private readonly pool: Pool;
  /** The same pool through mysql2's callback API, which every operation uses (see `execute`). */
  private readonly corePool: CallbackPool;
  private readonly ownsPool: boolean;
  /** Where lock connections come from: a pool of the store's own beside `pool`, or your pool. */
  private readonly lockPool: Pool;
  /** The locks held (or being taken) right now: close() ends their connections. */
  private readonly leases = new Set<NamedLease>();
  private readonly createSchema: boolean;
  private readonly maxSaveAttempts: number;
  /** The real column sizes and keys, read once (and again after migrate(), a dropped table or a warning). */
  private shape: Promise<TableShape> | null = null;
  /** `shape` once it has been read: operations then go straight to their statement. */
  private knownShape: TableShape | null = null;
  /**
   * The server's clock, for the deadline one-statement saves carry (MariaDB): measured with the table's shape
   * (one timed `SELECT SYSDATE(6)`), then again when a measurement is `CLOCK_MAX_AGE_MS` old.
   */
  private readonly clock = new kit.ServerClock();
  /** When the table's triggers were last read (`performance.now()`): with its shape, then at most a minute apart. */
  private triggersCheckedAt = 0;
  private closing: Promise<void> | null = null;
  /** Every socket of the store's own pool, connecting ones included: close() cuts whatever is left. */
  private readonly sockets = new Set<Socket>();
  /**
   * Pooled connections this store has set to autocommit (`AUTOCOMMIT_ON`, once per connection). A session can
   * lose it later (a pool that resets sessions on release to a server whose default is off, your own code on a
   * shared pool): one-statement saves and deletes check it again as they run.
   */
  private readonly autocommitting = new WeakSet<Connection>();

  constructor(options: MySQLTokenStoreOptions = {}) {
    const given: unknown = options; // checked as unknown: the caller may not be TypeScript
    kit.checkOptionsObject(given, STORE_NAME);
    kit.checkOptionNames(given, OPTION_NAMES, STORE_NAME, RENAMED_OPTIONS);
    const open = { store: STORE_NAME, operation: 'open' } as const;
    this.table = parseTableName(options.table);
    this.sql = statements(this.table);
    this.operationTimeoutMs = kit.operationTimeoutOption(options.operationTimeoutMs, STORE_NAME);
    this.maxSaveAttempts = kit.maxSaveAttemptsOption(options.maxSaveAttempts, STORE_NAME);
    this.createSchema = kit.booleanOption(options.createSchema, 'createSchema', true, STORE_NAME);
    if (options.pool !== undefined) {
      if (options.url !== undefined) throw TokenStoreError.invalidArgument(open, 'give either url or pool, not both');
      if (typeof options.pool !== 'object' || options.pool === null || typeof options.pool.getConnection !== 'function') {
        throw TokenStoreError.invalidArgument(open, 'pool must be a mysql2 pool');
      }
      this.pool = isCallbackPool(options.pool) ? options.pool.promise() : options.pool;
      this.lockPool = this.pool;
      this.ownsPool = false;
    } else {
      const url = kit.urlOption(options.url ?? DEFAULT_URL, 'url', ['mysql:', 'mariadb:'], STORE_NAME);
      const config: PoolOptions = {
        ...poolConfigFromUrl(url),
        connectTimeout: Math.min(this.operationTimeoutMs, 10000),
        charset: 'utf8mb4',
        // No stack trace captured per call: the store uses the callback API and wraps errors itself.
        trace: false,
        // Our own sockets (what mysql2 would open, with keep-alive), so close() can end every one of them.
        stream: ({ config }: { config: { host: string; port: number; socketPath?: string } }) => {
          const socket = config.socketPath ? connect(config.socketPath) : connect(config.port, config.host);
          socket.setNoDelay(true).setKeepAlive(true);
          this.sockets.add(socket);
          socket.once('close', () => this.sockets.delete(socket));
          return socket;
        },
      };
      this.pool = createPool(config);
      // Locks held while their work calls the store must not take the connections those calls need.
      this.lockPool = createPool(config);
      // Idle pooled connections that the server drops report here; without a listener they would crash the app.
      this.pool.pool.on('error', () => {});
      this.lockPool.pool.on('error', () => {});
      this.ownsPool = true;
    }
    this.corePool = this.pool.pool;
  }

  async findToken(token: OAuthToken): Promise<OAuthToken | null> {
    this.checkOpen('findToken');
    kit.checkTokenArgument(token, STORE_NAME, 'findToken');
    const key = kit.lookupKey(token);
    if (key === null) return null;
    const rows = await this.run('findToken', (connection) => this.select(connection, this.sql.selectBy[key.field], [key.value]), {
      secrets: kit.tokenSecrets(token),
    });
    const column = kit.LOOKUP_COLUMNS[key.field] as keyof StoredRow;
    const row = rows.find((candidate) => candidate[column] === key.value);
    return row === undefined ? null : kit.fillAbsentFields(token, kit.tokenFromRow(row, STORE_NAME, 'findToken'));
  }

  async findTokenById(id: string): Promise<OAuthToken | null> {
    this.checkOpen('findTokenById');
    kit.checkIdArgument(id, STORE_NAME, 'findTokenById');
    const rows = await this.run('findTokenById', (connection) => this.select(connection, this.sql.selectById, [id]));
    const row = rows.find((candidate) => candidate.id === id);
    return row === undefined ? null : kit.tokenFromRow(row, STORE_NAME, 'findTokenById');
  }

  async getTokens(): Promise<OAuthToken[]> {
    this.checkOpen('getTokens');
    const rows = await this.run('getTokens', (connection) => this.select(connection, this.sql.selectAll, []));
    return rows.map((row) => kit.tokenFromRow(row, STORE_NAME, 'getTokens'));
  }

  async deleteToken(id: string): Promise<void> {
    this.checkOpen('deleteToken');
    kit.checkIdArgument(id, STORE_NAME, 'deleteToken');
    await this.run('deleteToken', (connection, bound) =>
      this.deleteCommitted(connection, () =>
        kit.retrySave(this.deadlockRetry(bound.signal), () => execute<ResultSetHeader>(connection, this.sql.deleteById, [id, id])),
      ),
    );
  }

  async deleteTokens(): Promise<void> {
    this.checkOpen('deleteTokens');
    await this.run('deleteTokens', (connection, bound) =>
      this.deleteCommitted(connection, () => kit.retrySave(this.deadlockRetry(bound.signal), () => query(connection, this.sql.deleteAll))),
    );
  }

  /**
   * A delete is one statement that commits by itself, unless its answer shows it ran inside a transaction
   * someone left open on the connection (autocommit lost since this store set it, or START TRANSACTION without
   * its end). That transaction is ended as a save ends it, rolled back (its work was abandoned; committing it
   * would keep half of someone's work), and the delete runs again, committed by itself.
   */
  private async deleteCommitted(connection: Connection, remove: () => Promise<ResultSetHeader>): Promise<void> {
    const result = await remove();
    if ((Number(result.serverStatus) & SERVER_STATUS_IN_TRANS) === 0) return;
    await this.endLeftOpenTransaction(connection);
    await remove();
  }

  /** Rolls back a transaction left open on the connection and turns autocommit on again. */
  private async endLeftOpenTransaction(connection: Connection): Promise<void> {
    await query(connection, 'ROLLBACK');
    await query(connection, AUTOCOMMIT_ON);
    this.autocommitting.add(connection);
  }

  /** A single DELETE can lose a deadlock to saves too (its row locks against theirs): it simply runs again. */
  private deadlockRetry(signal: AbortSignal): kit.RetryOptions {
    return { maxAttempts: this.maxSaveAttempts, signal, shouldRetry: isDeadlock };
  }

  /**
   * On MariaDB 10.5+, the common saves are one statement with no transaction (see `oneStatementSave`): a user's
   * token by user name, new or known, on a table with an exact unique user name index; a token by id. On MySQL a
   * save that names its user is one upsert in a transaction. Anything else: one transaction under the table's
   * named lock. None depends on the session's isolation level, and none takes the gap locks of a
   * SELECT ... FOR UPDATE on missing rows.
   */
  async saveToken(token: OAuthToken): Promise<void> {
    this.checkOpen('saveToken');
    kit.checkSaveArgument(token, STORE_NAME);
    const stored = await this.run(
      'saveToken',
      async (connection, bound) => {
        const shape = await this.tableShape(connection, 'saveToken');
        this.checkLengths(token, shape); // before any write: a value that cannot fit costs no round trip
        return this.save(connection, token, shape, bound).catch(async (error: unknown) => {
          if (kit.driverErrorCode(error) !== 'ER_DATA_TOO_LONG') throw error;
          // The column shrank under this store (strict mode refused): name it with its real limit.
          this.forgetShape();
          this.checkLengths(token, await this.tableShape(connection, 'saveToken'));
          throw error;
        });
      },
      { secrets: kit.tokenSecrets(token) },
    );
    kit.copyStoredFields(token, stored);
  }

  private async save(connection: Connection, token: OAuthToken, shape: TableShape, bound: Bound): Promise<OAuthToken> {
    if (!shape.returning && !shape.beforeTriggers && performance.now() - this.triggersCheckedAt > CLOCK_MAX_AGE_MS) {
      // The MySQL path measures no clock, in whose query MariaDB's path sees new triggers: look on its own.
      const [triggers] = await this.select<{ n: string | number }>(connection, BEFORE_TRIGGERS_QUERY, [
        this.table.database,
        this.table.table,
      ]);
      this.triggersCheckedAt = performance.now();
      if (Number(triggers?.n) > 0) {
        this.forgetShape();
        shape = { ...shape, beforeTriggers: true };
      }
    }
    if (shape.beforeTriggers) {
      // Only the locked path: a trigger could undo the NULL id by which the other paths refuse to write.
    } else if (shape.returning) {
      const stored = await this.oneStatementSave(connection, token, shape, bound);
      if (stored !== null) return stored;
    } else if (shape.upsertByUserName && shape.uniqueId && !shape.autoIncrement && token.userSignature !== null) {
      const stored = await kit
        .retrySave(this.saveRetry(bound), () => this.upsert(connection, token))
        .catch((error: unknown) => {
          if (error instanceof UpsertRefused) return null;
          throw error;
        });
      if (stored !== null) return stored;
    }
    return this.withTableLock(connection, () => kit.retrySave(this.saveRetry(bound), () => this.lockedSave(connection, token, shape)));
  }

  /** A deadlock is the backstop case; an id collision needs a fresh id. */
  private saveRetry(bound: Bound): kit.RetryOptions {
    return {
      maxAttempts: this.maxSaveAttempts,
      signal: bound.signal,
      shouldRetry: (error: unknown) => error instanceof IdCollision || isDeadlock(error),
    };
  }

  /**
   * MariaDB: the save as one statement that writes and returns the row as stored (`upsertReturning`,
   * `updateByIdReturning` in sql.ts), or null when it cannot decide and wrote nothing: no token with that id
   * (the token may match another by access, refresh or grant token, or be new), or a fresh id that another
   * token had. The general save then runs. Without a transaction, a save reported failed is never applied later:
   * the server ends the statement before the operation's bound (`ONE_STATEMENT` in sql.ts), and a statement
   * that reaches it late writes nothing once the server's clock is past the bound (`BEFORE_DEADLINE`). A save
   * the deadline stopped is BACKEND_UNAVAILABLE, never a fallback write.
   */
  private async oneStatementSave(connection: Connection, token: OAuthToken, shape: TableShape, bound: Bound): Promise<OAuthToken | null> {
    const values = kit.tokenToValues(token);
    const freshId = token.id === null;
    let sql: string;
    if (!shape.uniqueId) return null; // no key on id for ON DUPLICATE KEY UPDATE to meet
    const byUserName = token.userSignature !== null && shape.upsertByUserName;
    if (byUserName) {
      if (freshId) values[0] = kit.newTokenId();
      sql = this.sql.upsertReturning(freshId);
    } else if (token.userSignature === null && !freshId && shape.exactId) {
      values.push(values.shift()!); // the id goes last, to the WHERE
      sql = this.sql.updateByIdReturning;
    } else {
      return null;
    }
    let offsetMs = this.clock.offsetMs;
    if (offsetMs === null || this.clock.ageMs() > CLOCK_MAX_AGE_MS) {
      const measured = await this.measureClock(connection, 'saveToken');
      if (measured.beforeTriggers) {
        // A trigger appeared since the table's shape was read: read it again, and save the locked way.
        this.forgetShape();
        return null;
      }
      offsetMs = measured.offsetMs;
    }
    // The operation's deadline on the server's clock, early by the measurement's uncertainty (the offset is the
    // lowest the measurement allows): the server writes nothing once it is past (a packet that arrives late),
    // so a save reported failed is never applied later.
    const deadline = ((performance.timeOrigin + bound.endsAt + offsetMs) / 1000).toFixed(6);
    // What is left of the operation's time, less a tenth of it for the way to the server.
    const seconds = () => Math.max(0.001, (bound.remainingMs() - bound.timeoutMs / 10) / 1000);
    const deadlines = byUserName ? [deadline, deadline] : [deadline];
    const write = () => execute<StoredRow[]>(connection, sql, [seconds(), ...values, ...deadlines]);
    const late = () =>
      TokenStoreError.unavailable(
        { store: STORE_NAME, operation: 'saveToken' },
        'the server ran the save past its time bound and wrote nothing',
      );
    let rows: StoredRow[];
    try {
      rows = await write().catch((error: unknown) => {
        if (!isDeadlock(error) || this.maxSaveAttempts === 1) throw error;
        return kit.retrySave({ maxAttempts: this.maxSaveAttempts - 1, signal: bound.signal, shouldRetry: isDeadlock }, write);
      });
    } catch (error) {
      const code = kit.driverErrorCode(error);
      if (code === 'ER_BAD_NULL_ERROR') {
        // One of the statement's guards, nothing written: the deadline (the server's clock says whether it can
        // have been: never a fallback write past it), or an unreadable stored row, a session without autocommit,
        // another token's id taken as a fresh one. The general save handles those (CORRUPT_DATA for the row).
        if (bound.expired !== null || !(await this.afterNoWrite(connection, deadline))) throw late();
        return null;
      }
      if (freshId && code === 'ER_DUP_ENTRY') {
        if (!(await this.afterNoWrite(connection, deadline)) || bound.expired !== null) throw late();
        return null;
      }
      throw error;
    }
    const [row] = rows;
    if (row !== undefined) return kit.tokenFromRow(row, STORE_NAME, 'saveToken');
    // No row: the deadline, or a session that had lost autocommit (turned on again now), or, by id, no token
    // with that id. Never a fallback write once the server's clock says the deadline has passed.
    const inTime = await this.afterNoWrite(connection, deadline);
    if (bound.expired !== null || !inTime) throw late();
    return null;
  }

  /**
   * After a one-statement save that wrote nothing, before anything else runs on its connection: ends the
   * transaction the statement left open when the session had lost autocommit (with its row locks; the locked
   * save could not even set its isolation level), turns autocommit on again, and tells whether the server's
   * clock is still before the save's deadline (`AFTER_NO_WRITE`).
   */
  private async afterNoWrite(connection: Connection, deadline: string): Promise<boolean> {
    const [state] = await this.select<{ in_time: number | string | null; autocommit: number | string; in_transaction: number | string }>(
      connection,
      AFTER_NO_WRITE,
      [deadline],
    );
    if (Number(state?.autocommit) !== 1 || Number(state?.in_transaction) !== 0) await this.endLeftOpenTransaction(connection);
    return Number(state?.in_time) === 1;
  }

  /**
   * Measures the server's clock against this process's (one round trip, kept for `CLOCK_MAX_AGE_MS` whatever
   * the round trip took), and, in the same query, whether the table has BEFORE triggers by now.
   */
  private async measureClock(
    connection: Connection,
    operation: TokenStoreOperation,
  ): Promise<{ offsetMs: number; beforeTriggers: boolean }> {
    let beforeTriggers = false;
    const offsetMs = await this.clock.measure(async () => {
      const [row] = await this.select<{ now: string | number; before_triggers: string | number }>(connection, SERVER_CLOCK, [
        this.table.database,
        this.table.table,
      ]);
      const serverMs = Number(row?.now) * 1000;
      if (!Number.isFinite(serverMs)) {
        throw TokenStoreError.failure({ store: STORE_NAME, operation }, "the server's clock could not be read");
      }
      beforeTriggers = Number(row?.before_triggers) > 0;
      return serverMs;
    }, Number.POSITIVE_INFINITY);
    return { offsetMs, beforeTriggers };
  }

  /** MySQL: `upsert` in a transaction, then the row it updated read back under that row's lock. */
  private async upsert(connection: Connection, token: OAuthToken): Promise<OAuthToken> {
    const stored = token.clone();
    const freshId = stored.id === null;
    if (freshId) stored.id = kit.newTokenId();
    return this.transaction(connection, async () => {
      const result = await execute<ResultSetHeader>(connection, this.sql.upsert, upsertValues(kit.tokenToValues(stored))).catch(
        (error: unknown) => {
          const code = kit.driverErrorCode(error);
          // With a fresh id the user name cannot clash (the upsert takes that row); only the id can.
          if (freshId && code === 'ER_DUP_ENTRY') throw new IdCollision();
          // The stored row cannot be read (see `upsert` in sql.ts): rolled back, the general save reports it.
          throw code === 'ER_BAD_NULL_ERROR' ? new UpsertRefused() : error;
        },
      );
      // A warning: the same refusal in a non-strict session, or a value the column would alter. Rolled back; the
      // general save tells which (CORRUPT_DATA, or the warning's own error).
      if (result.warningStatus !== 0) throw new UpsertRefused();
      if (Number(result.insertId) === 0) return stored; // inserted: the row is the token as given
      const [row] = await this.select(connection, this.sql.selectByUserName, [stored.userName]);
      const updated = kit.tokenFromRow(row ?? {}, STORE_NAME, 'saveToken');
      // Updated the token that owns our fresh id (renaming it) rather than our user's: undo, take another id.
      if (freshId && updated.id === stored.id) throw new IdCollision();
      return updated;
    });
  }

  /**
   * The general save: read and lock the rows the save could touch (same id, the findToken match, the same
   * user name), decide with core's planSave, then UPDATE or INSERT. The caller holds the table's named lock,
   * so two saves never both decide "insert" (READ COMMITTED alone would let them), and READ COMMITTED keeps
   * the SELECT ... FOR UPDATE to the matched rows (REPEATABLE READ's gap locks deadlock under load).
   */
  private async lockedSave(connection: Connection, token: OAuthToken, shape: TableShape): Promise<OAuthToken> {
    const key = kit.lookupKey(token);
    const locks: [string, string][] = [];
    if (token.id !== null) locks.push(['id', token.id]);
    if (key !== null) locks.push([kit.LOOKUP_COLUMNS[key.field], key.value]);
    // The user name this save gives the token: another row holding it means CONFLICT.
    if (token.userName !== null && key?.field !== 'userName') locks.push(['user_name', token.userName]);
    await query(connection, this.sql.readCommittedNext).catch(async (error: unknown) => {
      // Refused inside a transaction someone left open on the connection: end it as a one-statement save would.
      if (kit.driverErrorCode(error) !== 'ER_CANT_CHANGE_TX_CHARACTERISTICS') throw error;
      await this.endLeftOpenTransaction(connection);
      await query(connection, this.sql.readCommittedNext);
    });
    return this.transaction(connection, async () => {
      const rows =
        locks.length === 0
          ? []
          : await this.select(
              connection,
              this.sql.selectForSave(locks.map(([column]) => column)),
              locks.map(([, value]) => value),
            );
      const candidates = rows.map((row) => kit.tokenFromRow(row, STORE_NAME, 'saveToken'));
      const plan = kit.planSave(
        {
          findById: (id) => candidates.find((candidate) => candidate.id === id) ?? null,
          findByKey: (lookup) => candidates.find((candidate) => kit.matchesLookupKey(candidate, lookup)) ?? null,
        },
        token,
        STORE_NAME,
      );
      this.checkLengths(plan.stored, shape);
      const row = kit.tokenToValues(plan.stored);
      const result = await (plan.replaces === null
        ? execute<ResultSetHeader>(connection, this.sql.insert, row).catch((error: unknown) => {
            // A generated id that another token already has (the SELECT only locked the ids it was asked about).
            throw token.id === null && isDuplicateId(error) ? new IdCollision() : error;
          })
        : execute<ResultSetHeader>(connection, this.sql.update, [...row.slice(1), plan.replaces.id]));
      this.checkWarnings(result);
      return plan.stored;
    });
  }

  /** START TRANSACTION, `work`, COMMIT; on any failure ROLLBACK (best effort: a broken connection is destroyed anyway). */
  private async transaction<T>(connection: Connection, work: () => Promise<T>): Promise<T> {
    await query(connection, 'START TRANSACTION');
    try {
      const result = await work();
      await query(connection, 'COMMIT');
      return result;
    } catch (error) {
      await query(connection, 'ROLLBACK').catch(() => {});
      throw error;
    }
  }

  /**
   * Holds the table's named lock around `work`: one locked save at a time per table, across processes.
   * The wait is bounded by the operation's time; a lock left by a broken connection ends with its session.
   */
  private async withTableLock<T>(connection: Connection, work: () => Promise<T>): Promise<T> {
    const where = [this.table.database, this.table.table];
    const rows = await execute<RowDataPacket[]>(connection, this.sql.getLock, [...where, this.operationTimeoutMs / 1000]);
    if (Number(rows[0]?.locked) !== 1) {
      throw TokenStoreError.unavailable(
        { store: STORE_NAME, operation: 'saveToken' },
        `another save held the table's lock for ${this.operationTimeoutMs} ms`,
      );
    }
    let result: T;
    try {
      result = await work();
    } catch (error) {
      // A connection that cannot release is destroyed: its session, and the lock with it, ends on the server.
      await execute(connection, this.sql.releaseLock, where).catch(() => destroyConnection(connection));
      throw error;
    }
    await execute(connection, this.sql.releaseLock, where);
    return result;
  }

  /**
   * Brings the table to this store's schema: creates it, or on an existing table (Zoho's DBStore table)
   * adds missing columns, widens secrets to `mediumtext`, switches to a binary collation, stores empty user names
   * as NULL and adds the unique user name index and the token lookup indexes. Idempotent; never narrows.
   * Runs without the operation time bound (an ALTER on a large table takes a while).
   */
  async migrate(): Promise<void> {
    this.checkOpen('migrate');
    await this.run(
      'migrate',
      async (connection) => {
        const where = [this.table.database, this.table.table];
        const columns = await this.select<ColumnInfo>(connection, COLUMNS_QUERY, where);
        const collation = await this.collation(connection);
        if (columns.length === 0) {
          await query(connection, createTableSql(this.table, collation));
        } else {
          const indexes = await this.select<IndexInfo>(connection, INDEXES_QUERY, where);
          const clauses = migrationClauses(columns, indexes, collation);
          if (clauses.length > 0) {
            await query(connection, this.sql.emptyUserNamesToNull);
            await query(connection, this.sql.alter(clauses));
          }
        }
        this.forgetShape();
      },
      { timeoutMs: 24 * 3600 * 1000 },
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

  /**
   * Runs `work` while holding the lock on `key`, shared by every process whose store uses this database and
   * table: a named lock (GET_LOCK), held on a connection of its own for the whole hold (see lock.ts).
   */
  async withLock<T>(key: string, work: (lock: HeldLock) => Promise<T>, options?: LockOptions): Promise<T> {
    this.checkOpen('withLock');
    return kit.runWithLease(STORE_NAME, key, work, options, (lockKey, leaseMs) => this.tryLock(lockKey, leaseMs));
  }

  private async tryLock(key: string, leaseMs: number): Promise<kit.Lease | null> {
    this.checkOpen('withLock'); // also between two tries of a wait
    try {
      const name: [string | null, string] = [this.table.database, lockDigest(this.table, key)];
      const lease = await NamedLease.tryTake(this.lockPool, name, leaseMs, this.operationTimeoutMs, this.leases);
      if (lease !== null && this.closing !== null) {
        lease.destroy(); // close() ran while this try was under way
        this.checkOpen('withLock');
      }
      return lease;
    } catch (error) {
      this.checkOpen('withLock'); // a try that close() cut short
      throw this.mapError(error, 'withLock', []);
    }
  }

  /**
   * Ends the pools the store made (a pool you passed in stays open) and the connections of locks still held
   * (their holders' signals then abort with LOCK_LOST). Always resolves: after an outage the pool's ending
   * reports its dead connections' old errors, which say nothing about the ending itself; and sockets to a
   * server that does not answer (frozen, unreachable) are cut rather than waited for.
   */
  async close(): Promise<void> {
    if (this.closing === null) {
      this.closing = Promise.resolve(); // first: a lock try under way sees it and lets go of its connection
      for (const lease of this.leases) lease.destroy();
      if (this.ownsPool) this.closing = this.endPool();
    }
    await this.closing;
  }

  private async endPool(): Promise<void> {
    await Promise.all([this.pool.end().catch(() => {}), this.lockPool.end().catch(() => {})]);
    const closed = [...this.sockets].map((socket) => new Promise((resolve) => socket.once('close', resolve)));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(closed), new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_GRACE_MS)))]);
    clearTimeout(timer);
    for (const socket of this.sockets) socket.destroy();
  }

  private checkOpen(operation: TokenStoreOperation): void {
    if (this.closing !== null) throw TokenStoreError.closed({ store: STORE_NAME, operation });
  }

  private select<Row = StoredRow>(connection: Connection, sql: string, values: (string | null)[]): Promise<Row[]> {
    return execute<Row[]>(connection, sql, values);
  }

  private async collation(connection: Connection): Promise<string> {
    const rows = await this.select<{ COLLATION_NAME: string }>(connection, COLLATIONS_QUERY, COLLATION_PREFERENCE);
    const available = new Set(rows.map((row) => row.COLLATION_NAME));
    return COLLATION_PREFERENCE.find((name) => available.has(name)) ?? 'utf8mb4_bin';
  }

  /** VALUE_TOO_LONG, naming the column and its limit, for a value the real column cannot hold. */
  private checkLengths(token: OAuthToken, shape: TableShape): void {
    const tooLong = findTooLong(kit.tokenToRow(token), shape);
    if (tooLong !== null) throw TokenStoreError.valueTooLong({ store: STORE_NAME, operation: 'saveToken' }, tooLong.column, tooLong.limit);
  }

  /** Outside strict mode MySQL truncates with only a warning: never keep such a write (the caller rolls back). */
  private checkWarnings(result: ResultSetHeader): void {
    if (result.warningStatus === 0) return;
    this.forgetShape(); // the checked sizes were stale: read the columns again next time
    throw TokenStoreError.failure(
      { store: STORE_NAME, operation: 'saveToken' },
      'the server would have altered a value (it raised a warning); nothing was written',
    );
  }

  /** Reads the real columns and indexes (creating the table first when allowed and missing). */
  private async readShape(connection: Connection, operation: TokenStoreOperation): Promise<TableShape> {
    const where = [this.table.database, this.table.table];
    let columns = await this.select<ColumnInfo>(connection, COLUMNS_QUERY, where);
    if (columns.length === 0) {
      if (!this.createSchema) {
        throw TokenStoreError.failure({ store: STORE_NAME, operation }, 'the table does not exist; run migrate() or set createSchema');
      }
      await query(connection, createTableSql(this.table, await this.collation(connection)));
      columns = await this.select<ColumnInfo>(connection, COLUMNS_QUERY, where);
    }
    const [{ version }] = (await this.select<{ version: string }>(connection, 'SELECT VERSION() AS version', [])) as [{ version: string }];
    const indexes = await this.select<IndexInfo>(connection, INDEXES_QUERY, where);
    const [triggers] = await this.select<{ n: string | number }>(connection, BEFORE_TRIGGERS_QUERY, where);
    this.triggersCheckedAt = performance.now();
    const shape = tableShape(columns, indexes, version, Number(triggers?.n));
    if ('missing' in shape) {
      throw TokenStoreError.failure(
        { store: STORE_NAME, operation },
        `the table lacks column(s) ${shape.missing.join(', ')}; run migrate() to add them`,
      );
    }
    // Learned here, not on a save's way: a one-statement save stays one round trip.
    if (shape.returning) await this.measureClock(connection, operation);
    return shape;
  }

  /**
   * Runs one operation on one pooled connection within the time bound (past it the caller gets
   * BACKEND_UNAVAILABLE and the connection is destroyed, so the server rolls back whatever it held and nothing
   * is applied later). A connection that failed is destroyed too, so the pool only keeps healthy ones and
   * recovers by itself once the server is back.
   */
  private run<T>(
    operation: TokenStoreOperation,
    work: (connection: Connection, bound: Bound) => Promise<T>,
    { timeoutMs = this.operationTimeoutMs, secrets = [] as string[] } = {},
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let connection: Connection | null = null;
      const bound = new Bound(timeoutMs, operation, (error) => {
        if (connection !== null) destroyConnection(connection);
        reject(error);
      });
      this.corePool.getConnection((error: unknown, got: Connection) => {
        if (bound.expired !== null) {
          if (got) destroyConnection(got); // the caller has its answer: nothing may run on it now
          return;
        }
        if (error) {
          bound.finish();
          reject(this.mapError(error, operation, secrets));
          return;
        }
        connection = got;
        // Once per connection, autocommit on; every operation but migrate() first learns the table (creating
        // it when allowed), once per store.
        const learn = operation !== 'migrate' && this.knownShape === null;
        const prepare = async () => {
          if (!this.autocommitting.has(got)) {
            await query(got, AUTOCOMMIT_ON);
            this.autocommitting.add(got);
          }
          if (learn) await this.tableShape(got, operation);
        };
        let running: Promise<T>;
        try {
          running = !learn && this.autocommitting.has(got) ? work(got, bound) : prepare().then(() => work(got, bound));
        } catch (thrown) {
          running = Promise.reject(thrown);
        }
        running.then(
          (result) => {
            if (!bound.finish()) return;
            got.release();
            resolve(result);
          },
          (failure: unknown) => {
            if (!bound.finish()) return;
            // Our own refusals (CONFLICT, VALUE_TOO_LONG...) leave a healthy, rolled-back connection.
            if (TokenStoreError.is(failure)) got.release();
            else destroyConnection(got);
            reject(this.mapError(failure, operation, secrets));
          },
        );
      });
    });
  }

  /** The table's shape, read once per store and shared by the operations that wait for it. */
  private async tableShape(connection: Connection, operation: TokenStoreOperation): Promise<TableShape> {
    if (this.knownShape !== null) return this.knownShape;
    if (this.shape === null) {
      const reading = this.readShape(connection, operation);
      this.shape = reading;
      reading.then(
        (shape) => {
          if (this.shape === reading) this.knownShape = shape;
        },
        () => {
          if (this.shape === reading) this.shape = null;
        },
      );
    }
    return this.shape;
  }

  /** The table changed, or may have: read its shape again before the next operation. */
  private forgetShape(): void {
    this.shape = null;
    this.knownShape = null;
  }

  /** Driver error -> TokenStoreError. The driver's message can quote values, so it stays in `cause` (made safe by the kit). */
  private mapError(error: unknown, operation: TokenStoreOperation, secrets: string[]): TokenStoreError {
    if (TokenStoreError.is(error)) return error;
    // An operation still waiting for a connection when close() ended the store's own pool.
    if (this.closing !== null && /^Pool is closed/.test(kit.driverErrorMessage(error))) {
      return TokenStoreError.closed({ store: STORE_NAME, operation });
    }
    const code = kit.driverErrorCode(error);
    const details = { store: STORE_NAME, operation, cause: error, secrets };
    if (error instanceof IdCollision) return TokenStoreError.conflict(details, 'every generated id was already taken');
    if (code === 'ER_NO_SUCH_TABLE') {
      this.forgetShape();
      return TokenStoreError.failure(details, 'the table does not exist (ER_NO_SUCH_TABLE)');
    }
    if (code === 'ER_DATA_TOO_LONG') {
      // Only reached when the checked limits were stale (the table changed under a running store).
      const column = /column '([a-z_]+)'/.exec(kit.driverErrorMessage(error))?.[1] ?? 'unknown';
      this.forgetShape();
      return TokenStoreError.valueTooLong(details, column, 0);
    }
    if (code === 'ER_DUP_ENTRY') return TokenStoreError.conflict(details, 'another stored token already has this id or user name');
    if (code === 'ER_TRUNCATED_WRONG_VALUE_FOR_FIELD') {
      return TokenStoreError.failure(
        details,
        "a value has characters the column's character set cannot hold (ER_TRUNCATED_WRONG_VALUE_FOR_FIELD)",
      );
    }
    if ((error as { errno?: unknown } | null)?.errno === ER_STATEMENT_TIMEOUT) {
      return TokenStoreError.unavailable(details, "the server ended the statement at the operation's time bound (max_statement_time)");
    }
    if (UNAVAILABLE_CODES.has(code) || (error as { fatal?: unknown } | null)?.fatal === true) {
      return TokenStoreError.unavailable(details, `the server could not be reached (${code || 'connection lost'})`);
    }
    return TokenStoreError.failure(details, `the server refused the operation (${code || 'unknown error'})`);
  }
}
