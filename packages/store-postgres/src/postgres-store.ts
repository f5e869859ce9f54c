import type { HeldLock, LockOptions, OAuthToken, TokenLocking, TokenStore } from '@crm/core';
import { TokenStoreError } from '@crm/core';
import * as kit from '@crm/core/store-kit';
import pg from 'pg';
import { forgetServerOffset, serverOffset } from './clock.js';
import { AdvisoryLease } from './lock.js';
import { runPipeline } from './pipeline.js';
import {
  BTREE_MAX_ENTRY_BYTES,
  beginWrite,
  buildSql,
  type CatalogState,
  DEADLINE_PASSED_SQLSTATE,
  lockIds,
  quoteIdentifier,
  SCHEMA_NAME_PATTERN,
  STORE_NAME,
  type Statement,
  serverBoundMs,
  TABLE_NAME_PATTERN,
  type TokenSql,
  WRITE,
} from './sql.js';

type Operation = 'findToken' | 'findTokenById' | 'saveToken' | 'deleteToken' | 'getTokens' | 'deleteTokens' | 'migrate' | 'withLock';

interface CommonOptions {
  /** PostgreSQL schema of the table. Default `public`. Letters, digits and `_`; case is kept (names are quoted). */
  schema?: string;
  /** Table name. Default `oauthtoken` (Zoho's). Letters, digits and `_`, at most 52 characters. */
  table?: string;
  /** Every operation settles within this many milliseconds; past it, BACKEND_UNAVAILABLE. Default 5000. */
  operationTimeoutMs?: number;
  /** How many times a save runs when it loses a race to another writer. Default 5. */
  maxSaveAttempts?: number;
  /** Create schema, table and indexes on first use. Default true; set false when you run `migrate()` yourself. */
  createSchema?: boolean;
}

/** Your own pool: the store never ends it. Give it `connectionTimeoutMillis` so a dead server frees its waiters. */
export interface PostgresPoolOptions extends CommonOptions {
  pool: pg.Pool;
}

/** The store makes its own pool (with timeouts from `operationTimeoutMs`) and ends it in `close()`. */
export interface PostgresUrlOptions extends CommonOptions {
  /** `postgres://user:password@host:port/database`. */
  url: string;
  /** Further pool settings (`max`, `ssl`, `application_name`, ...). */
  poolConfig?: Omit<pg.PoolConfig, 'connectionString'>;
}

export type PostgresTokenStoreOptions = PostgresPoolOptions | PostgresUrlOptions;

const OPTION_NAMES = ['url', 'pool', 'poolConfig', 'schema', 'table', 'operationTimeoutMs', 'maxSaveAttempts', 'createSchema'];
const RENAMED_OPTIONS = { connectionString: 'url', autoMigrate: 'createSchema' };

/** SQLSTATEs that mean "not now": admin shutdown, crash shutdown, starting up, statement timeout, too many connections, lock timeout, idle-in-transaction timeout. */
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '57014', '53300', '55P03', '25P03']);
/** pg's own messages for connect timeouts, read timeouts and dropped connections. */
const UNAVAILABLE_MESSAGE = /timeout|terminated|Connection ended|not queryable|connection error/i;
/** Serialization failure and deadlock: the transaction lost a race and may simply run again. */
const LOST_RACE_SQLSTATES = new Set(['40001', '40P01']);
/**
 * Unique violations in the system catalogs: another session created a schema, table or type of the same
 * name at the same moment (one that took no advisory lock of ours). It exists now; running the step again finds it.
 */
const CATALOG_RACE_CONSTRAINTS = new Set(['pg_namespace_nspname_index', 'pg_type_typname_nsp_index', 'pg_class_relname_nsp_index']);
/** The columns with a btree index (primary key, user-name unique index): only their values can be too long for an index. */
const BTREE_COLUMNS = ['id', 'user_name'] as const;

/** The save statement returned no row: its target was deleted between its lookup and its update. */
class TargetVanished extends Error {}

/** Zoho CRM OAuth tokens in one PostgreSQL table. */
export class PostgresTokenStore implements TokenStore, TokenLocking {
  readonly schema: string;
  readonly table: string;
  readonly operationTimeoutMs: number;
  readonly maxSaveAttempts: number;
  private readonly pool: pg.Pool;
  private readonly ownsPool: boolean;
  /** Where lock connections come from: a pool of the store's own beside `pool`, or your pool. */
  private readonly lockPool: pg.Pool;
  /** Operations waiting for a pooled connection: close() ends them when it ends the store's pool. */
  private readonly waitingForConnection = new Set<() => void>();
  /** The locks held (or being taken) right now: close() ends their connections. */
  private readonly leases = new Set<AdvisoryLease>();
  private readonly createSchema: boolean;
  private readonly sql: TokenSql;
  private schemaReady: Promise<void> | null = null;
  /** `schemaReady` has resolved: operations skip the wait. */
  private schemaIsReady = false;
  private closing: Promise<void> | null = null;

  constructor(options: PostgresTokenStoreOptions) {
    kit.checkOptionsObject(options, STORE_NAME);
    const invalid = (message: string) => TokenStoreError.invalidArgument({ store: STORE_NAME, operation: 'open' }, message);
    kit.checkOptionNames(options as unknown as Record<string, unknown>, OPTION_NAMES, STORE_NAME, RENAMED_OPTIONS);
    const given = options as Partial<PostgresPoolOptions & PostgresUrlOptions>;
    this.schema = kit.nameOption(given.schema, 'schema', 'public', SCHEMA_NAME_PATTERN, `matching ${SCHEMA_NAME_PATTERN}`, STORE_NAME);
    this.table = kit.nameOption(given.table, 'table', 'oauthtoken', TABLE_NAME_PATTERN, `matching ${TABLE_NAME_PATTERN}`, STORE_NAME);
    this.operationTimeoutMs = kit.operationTimeoutOption(given.operationTimeoutMs, STORE_NAME);
    this.maxSaveAttempts = kit.maxSaveAttemptsOption(given.maxSaveAttempts, STORE_NAME);
    this.createSchema = kit.booleanOption(given.createSchema, 'createSchema', true, STORE_NAME);
    this.sql = buildSql(this.schema, this.table);

    if ((given.pool === undefined) === (given.url === undefined)) throw invalid('pass either pool or url');
    if (given.pool !== undefined) {
      if (typeof given.pool?.connect !== 'function') throw invalid('pool must be a pg.Pool');
      if (given.poolConfig !== undefined) throw invalid('poolConfig applies only with url; configure your own pool directly');
      this.pool = given.pool;
      this.lockPool = given.pool;
      this.ownsPool = false;
    } else {
      kit.urlOption(given.url, 'url', ['postgres:', 'postgresql:'], STORE_NAME);
      const poolConfig = given.poolConfig ?? {};
      if (typeof poolConfig !== 'object' || poolConfig === null) throw invalid('poolConfig must be an object');
      const config: pg.PoolConfig = {
        max: 10,
        idleTimeoutMillis: 30000,
        keepAlive: true,
        ...poolConfig,
        connectionString: given.url,
        // Bounded at both ends: the client gives up waiting (and drops the connection), the server cancels the statement.
        connectionTimeoutMillis: poolConfig.connectionTimeoutMillis ?? this.operationTimeoutMs,
        statement_timeout: poolConfig.statement_timeout ?? this.operationTimeoutMs,
      };
      this.pool = new pg.Pool(config);
      // Locks held while their work calls the store must not take the connections those calls need.
      this.lockPool = new pg.Pool(config);
      // Idle connections error out when the server restarts; the pool drops them. Without a listener that would crash the process.
      this.pool.on('error', () => {});
      this.lockPool.on('error', () => {});
      this.ownsPool = true;
    }
  }

  /** `"schema"."table"`, quoted as the store uses it in SQL. */
  get qualifiedTable(): string {
    return `${quoteIdentifier(this.schema)}.${quoteIdentifier(this.table)}`;
  }

  /**
   * Creates schema, table and indexes if they are missing and replaces the btree lookup indexes of earlier
   * versions. Safe to run from many processes at once, also while others write.
   */
  async migrate(): Promise<void> {
    this.checkOpen('migrate');
    await this.run('migrate', noSecrets, async (client, deadline) => {
      await this.setUpSchema(client, deadline);
      this.schemaReady = Promise.resolve();
      this.schemaIsReady = true;
    });
  }

  async findToken(token: OAuthToken): Promise<OAuthToken | null> {
    this.checkOpen('findToken');
    kit.checkTokenArgument(token, STORE_NAME, 'findToken');
    const key = kit.lookupKey(token);
    if (key === null) return null;
    const rows = await this.read('findToken', this.sql.findBy[key.field], [key.value]);
    return rows[0] === undefined ? null : kit.fillAbsentFields(token, kit.tokenFromRow(rows[0], STORE_NAME, 'findToken'));
  }

  async saveToken(token: OAuthToken): Promise<void> {
    this.checkOpen('saveToken');
    kit.checkSaveArgument(token, STORE_NAME);
    const key = kit.lookupKey(token);
    const hasId = token.id !== null;
    // A token with a user name always has the user-name key (rule 1): an insert race on it merges into the winner's row.
    const mergeOn = key?.field === 'userName' ? 'user_name' : hasId ? 'id' : null;
    const statement = this.sql.save({ hasId, field: key?.field ?? null, mergeOn });
    const values: (string | null)[] = [...kit.tokenToValues(token), null];
    if (key !== null) values.push(key.value);
    const secrets = () => [...kit.tokenSecrets(token), key?.value];
    const indexed = () => ({ id: values[0] ?? null, user_name: values[1] ?? null });
    const save: WriteStep<Array<string | null>> = {
      statement,
      values: () => {
        if (!hasId) values[10] = kit.newTokenId(); // fresh on every attempt, in case the last one collided
        return values;
      },
      result: (rows) => {
        if (rows[0] === undefined) throw new TargetVanished();
        return rows[0];
      },
    };
    // A token with an id is almost always a stored one (TokenManager's refresh): the plain update by id first;
    // no row (the id is not stored) and the save statement runs, within the same deadline.
    const steps = hasId
      ? [{ statement: this.sql.updateById, values: () => values.slice(0, 10), result: (rows: Rows) => rows[0] }, save]
      : [save];
    const row = await this.write('saveToken', secrets, steps, indexed);
    kit.copyStoredFields(token, kit.tokenFromRow(columnsToRow(row), STORE_NAME, 'saveToken'));
  }

  async deleteToken(id: string): Promise<void> {
    this.checkOpen('deleteToken');
    kit.checkIdArgument(id, STORE_NAME, 'deleteToken');
    await this.write('deleteToken', noSecrets, [{ statement: this.sql.deleteById, values: () => [id], result: () => true }]);
  }

  async getTokens(): Promise<OAuthToken[]> {
    this.checkOpen('getTokens');
    const rows = await this.read('getTokens', this.sql.getAll, []);
    return rows.map((row) => kit.tokenFromRow(row, STORE_NAME, 'getTokens'));
  }

  async deleteTokens(): Promise<void> {
    this.checkOpen('deleteTokens');
    await this.write('deleteTokens', noSecrets, [{ statement: this.sql.deleteAll, values: () => [], result: () => true }]);
  }

  async findTokenById(id: string): Promise<OAuthToken | null> {
    this.checkOpen('findTokenById');
    kit.checkIdArgument(id, STORE_NAME, 'findTokenById');
    const rows = await this.read('findTokenById', this.sql.findById, [id]);
    return rows[0] === undefined ? null : kit.tokenFromRow(rows[0], STORE_NAME, 'findTokenById');
  }

  /**
   * Runs `work` while holding the lock on `key`, shared by every process whose store uses this schema and
   * table: a PostgreSQL advisory lock, held on a connection of its own for the whole hold (see lock.ts).
   */
  async withLock<T>(key: string, work: (lock: HeldLock) => Promise<T>, options?: LockOptions): Promise<T> {
    this.checkOpen('withLock');
    return kit.runWithLease(STORE_NAME, key, work, options, (lockKey, leaseMs) => this.tryLock(lockKey, leaseMs));
  }

  private async tryLock(key: string, leaseMs: number): Promise<kit.Lease | null> {
    this.checkOpen('withLock'); // also between two tries of a wait
    try {
      const lease = await AdvisoryLease.tryTake(
        this.lockPool,
        lockIds(this.schema, this.table, key),
        leaseMs,
        this.operationTimeoutMs,
        this.leases,
      );
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
   * (their holders' signals then abort with LOCK_LOST). Every later call rejects with STORE_CLOSED. Resolves
   * once the pools' connections are gone, also after an outage; never rejects.
   */
  close(): Promise<void> {
    if (this.closing === null) {
      this.closing = Promise.resolve(); // first: a lock try under way sees it and lets go of its connection
      for (const lease of this.leases) lease.destroy();
      if (this.ownsPool) {
        // The ended pool would never hand them a connection: they ran nothing, and end now.
        for (const stop of this.waitingForConnection) stop();
        this.closing = Promise.allSettled([this.pool.end(), this.lockPool.end()]).then(() => {});
      }
    }
    return this.closing;
  }

  private checkOpen(operation: Operation): void {
    if (this.closing !== null) throw TokenStoreError.closed({ store: STORE_NAME, operation });
  }

  /** One prepared SELECT. Run again on a serialization failure, which a SERIALIZABLE default can cause even for reads. */
  private read(operation: Operation, statement: Statement, values: unknown[]): Promise<kit.TokenRow[]> {
    return this.run(
      operation,
      () => values,
      (client, deadline) =>
        kit.retrySave({ maxAttempts: this.maxSaveAttempts, shouldRetry: (error) => !deadline.passed && isLostRace(error) }, async () => {
          deadline.check();
          return (await client.query<kit.TokenRow>({ name: statement.name, text: statement.text, values })).rows;
        }),
    );
  }

  /**
   * Runs `statement` in a READ COMMITTED transaction bounded on the server by the deadline, in one round trip
   * (`WRITE` in sql.ts, pipeline.ts), and hands its rows to `result`; again when it lost a race. A write
   * reported as BACKEND_UNAVAILABLE is never committed afterwards: the deadline travels with it in the
   * server's time (clock.ts), so the server refuses to start it past the deadline, however late it arrives,
   * and cancels it before the deadline (`serverBoundMs`); at the deadline the store destroys the connection,
   * and no run starts after it.
   */
  private write<T>(operation: Operation, secrets: () => unknown[], steps: WriteStep<T>[], indexed?: () => IndexedValues): Promise<T> {
    return this.run(
      operation,
      secrets,
      (client, deadline) => {
        const retry = {
          maxAttempts: this.maxSaveAttempts,
          shouldRetry: (error: unknown) =>
            !deadline.passed && (isLostRace(error) || error instanceof TargetVanished || isUniqueViolation(error, this.sql.primaryKey)),
        };
        return kit.retrySave(retry, async () => {
          for (const { statement, values, result } of steps) {
            deadline.check();
            const offset = await serverOffset(this.pool, client, this.operationTimeoutMs / 10);
            deadline.check();
            const now = kit.clientNow();
            const serverDeadline = now + serverBoundMs(deadline.at - now) + offset;
            const pipeline = [
              { statement: WRITE.begin, values: [] },
              { statement: WRITE.deadline, values: [String(serverDeadline)] },
              { statement, values: values() },
              { statement: WRITE.commit, values: [] },
            ];
            let rows: Rows;
            try {
              rows = await runPipeline(client, pipeline, 2);
            } catch (error) {
              const code = kit.driverErrorCode(error);
              // The server skipped the steps after the failed one: end the transaction it left open (and failed).
              if (!deadline.passed && code.length === 5) await client.query('ROLLBACK').catch(ignore);
              // The write reached the server after its deadline in the server's time, but before it on the
              // store's clock: learn the offset again for the next write (clocks drift, and may be stepped).
              if (code === DEADLINE_PASSED_SQLSTATE && !deadline.passed) forgetServerOffset(this.pool);
              throw error;
            }
            const outcome = result(rows);
            if (outcome !== undefined) return outcome;
          }
          throw new Error('PostgresTokenStore: no write step gave a result'); // the last step always does
        });
      },
      indexed,
    );
  }

  /**
   * One operation on one pooled connection, against the deadline, with whatever it throws mapped to a
   * TokenStoreError. At the deadline the caller gets BACKEND_UNAVAILABLE at once and the connection is
   * destroyed: the server rolls back its open transaction, and nothing more is sent on it. `secrets` and
   * `indexed` are asked for only when there is an error to map.
   */
  private run<T>(
    operation: Operation,
    secrets: () => unknown[],
    work: (client: pg.PoolClient, deadline: Deadline) => Promise<T>,
    indexed?: () => IndexedValues,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let client: pg.PoolClient | null = null;
      const release = (destroy: boolean) => {
        if (client === null) return;
        const releasing = client;
        client = null;
        releasing.removeListener('error', ignore);
        releasing.release(destroy ? new Error('PostgresTokenStore: deadline passed') : undefined);
      };
      const deadline = new Deadline(this.operationTimeoutMs, () => {
        release(true);
        reject(
          TokenStoreError.unavailable({ store: STORE_NAME, operation }, `PostgreSQL did not answer within ${this.operationTimeoutMs} ms`),
        );
      });
      const fail = (error: unknown) => {
        deadline.clear();
        reject(this.mapError(error, operation, secrets(), indexed?.()));
      };
      const stopWaiting = () => {
        deadline.stop();
        reject(TokenStoreError.closed({ store: STORE_NAME, operation }));
      };
      this.waitingForConnection.add(stopWaiting);
      this.pool.connect().then(
        async (connected) => {
          this.waitingForConnection.delete(stopWaiting);
          if (deadline.passed) {
            connected.release(); // it came after the deadline; nothing ran on it, so the pool may keep it
            return;
          }
          client = connected;
          // A connection that dies between two queries emits 'error'; unheard, that would crash the process.
          connected.on('error', ignore);
          try {
            if (operation !== 'migrate' && !this.schemaIsReady) await this.ensureSchema(connected, deadline);
            const result = await work(connected, deadline);
            if (deadline.passed) return; // the caller was answered; what the work did afterwards is no one's
            deadline.clear();
            release(false);
            resolve(result);
          } catch (error) {
            if (deadline.passed) return;
            // Keep a connection only after an error the server answered with (a SQLSTATE); anything else may have left it unusable.
            const answered = error instanceof TargetVanished || kit.driverErrorCode(error).length === 5;
            release(!answered || (error as { severity?: unknown }).severity === 'FATAL');
            fail(error);
          }
        },
        (error: unknown) => {
          this.waitingForConnection.delete(stopWaiting);
          if (!deadline.passed) fail(error);
        },
      );
    });
  }

  private ensureSchema(client: pg.PoolClient, deadline: Deadline): Promise<void> {
    if (!this.createSchema) return Promise.resolve();
    this.schemaReady ??= this.setUpSchema(client, deadline).then(
      () => {
        this.schemaIsReady = true;
      },
      (error: unknown) => {
        this.schemaReady = null; // try again on the next operation (the server may be back)
        throw error;
      },
    );
    return this.schemaReady;
  }

  /**
   * Brings schema, table and indexes to the current layout (see `SchemaSetup`). The catalog is read first
   * without any lock: when nothing is missing, the usual case, that one query is all. Else one transaction
   * takes the table's advisory lock (and the schema's, when the schema has to be made), reads the catalog
   * again and makes the changes, taking the table lock they need before the first of them. A deadlock or
   * serialization failure, or a schema, table or type another session created at the same moment, runs the
   * transaction again within `maxSaveAttempts` and the deadline.
   */
  private async setUpSchema(client: pg.PoolClient, deadline: Deadline): Promise<void> {
    const { setup } = this.sql;
    if (setup.changes(await this.readCatalog(client)).length === 0) return;
    const retry = { maxAttempts: this.maxSaveAttempts, shouldRetry: (error: unknown) => !deadline.passed && isSetupRace(error) };
    await kit.retrySave(retry, () =>
      transaction(client, deadline, async () => {
        await client.query(setup.lockTable);
        let state = await this.readCatalog(client);
        if (!state.schemaExists) {
          await client.query(setup.lockSchema);
          state = await this.readCatalog(client); // another store may have made the schema while we waited
        }
        const changes = setup.changes(state);
        if (changes.length > 0) await client.query(changes.join(';\n'));
      }),
    );
  }

  /** The catalog's view of schema, table and index names, from a fresh snapshot (a statement of its own). */
  private async readCatalog(client: pg.PoolClient): Promise<CatalogState> {
    const { name, text, values } = this.sql.setup.check;
    const { rows } = await client.query<{ schema_exists: boolean; table_exists: boolean; relations: Record<string, string> }>({
      name,
      text,
      values,
    });
    const row = rows[0];
    if (row === undefined) throw new Error('PostgresTokenStore: the catalog query returned no row');
    return { schemaExists: row.schema_exists, tableExists: row.table_exists, relations: row.relations };
  }

  /** pg errors to codes. The driver's error is kept only as a safe copy without `secrets` (see TokenStoreError). */
  private mapError(error: unknown, operation: Operation, secrets: unknown[], indexed?: IndexedValues): TokenStoreError {
    if (TokenStoreError.is(error)) return error;
    // An operation still running when close() ended the store's pool.
    if (this.closing !== null && /after calling end on the pool/.test(kit.driverErrorMessage(error))) {
      return TokenStoreError.closed({ store: STORE_NAME, operation });
    }
    const values = secrets.filter((value): value is string => typeof value === 'string');
    const details = { store: STORE_NAME, operation, cause: error, secrets: values };
    const code = kit.driverErrorCode(error);
    if (isUniqueViolation(error, this.sql.userNameIndex)) {
      return TokenStoreError.conflict(details, 'another stored token already has this user name');
    }
    if (error instanceof TargetVanished) {
      return TokenStoreError.failure(details, 'the stored token kept changing concurrently');
    }
    if (code === '22001') {
      const limit = /\((\d+)\)/.exec(kit.driverErrorMessage(error))?.[1];
      return TokenStoreError.valueTooLong(details, 'of the token table', Number(limit ?? 0));
    }
    if (code === '54000') {
      // A value too long for an index entry (btree: "index row size ... exceeds btree version 4 maximum 2704 for
      // index ..."; much longer: "index row requires ... bytes, maximum size is 8191", without the index name).
      const column = this.sql.indexColumns[String((error as { constraint?: unknown }).constraint)] ?? tooLongForBtree(indexed);
      const limit = /btree version \d+ maximum (\d+)/.exec(kit.driverErrorMessage(error))?.[1];
      return TokenStoreError.valueTooLong(details, column, Number(limit ?? BTREE_MAX_ENTRY_BYTES));
    }
    if (code === '42P01' || code === '3F000') {
      // Table or schema dropped behind our back: recreate next time.
      this.schemaReady = null;
      this.schemaIsReady = false;
    }
    if (code === DEADLINE_PASSED_SQLSTATE) {
      // Only `WRITE.deadline` divides: the write reached the server after its deadline and was not run.
      return TokenStoreError.unavailable(details, `PostgreSQL received the ${operation} after its deadline`);
    }
    if (
      code.startsWith('08') ||
      UNAVAILABLE_SQLSTATES.has(code) ||
      kit.NETWORK_ERROR_CODES.has(code) ||
      (code === '' && UNAVAILABLE_MESSAGE.test(kit.driverErrorMessage(error)))
    ) {
      return TokenStoreError.unavailable(details, `PostgreSQL is not reachable${code === '' ? '' : ` (${code})`}`);
    }
    return TokenStoreError.failure(details, `PostgreSQL reported an error${code === '' ? '' : ` (SQLSTATE ${code})`}`);
  }
}

function ignore(): void {}

const noSecrets = (): unknown[] => [];

type Rows = Array<Array<string | null>>;

/** One statement of a write, in a transaction of its own; `result` undefined: go on with the next step. */
interface WriteStep<T> {
  statement: Statement;
  values: () => ReadonlyArray<string | null>;
  result: (rows: Rows) => T | undefined;
}

/**
 * An operation's deadline: a timer that answers the caller and stops the work when it fires (a flag the
 * work checks before each step, where an AbortSignal per operation would cost more than the rest of a read).
 */
class Deadline {
  /** The deadline passed, or the caller was answered otherwise (`stop`): nothing more may start. */
  passed = false;
  /** When it passes, on `kit.clientNow()`'s clock. */
  readonly at: number;
  private readonly timer: NodeJS.Timeout;

  constructor(timeoutMs: number, onPass: () => void) {
    this.at = kit.clientNow() + timeoutMs;
    this.timer = setTimeout(() => {
      this.passed = true; // first, so nothing the work does after this moment can still be applied
      onPass();
    }, timeoutMs);
  }

  remainingMs(): number {
    return this.at - kit.clientNow();
  }

  /** Throws once the deadline has passed: a step the caller was told had failed must never start. */
  check(): void {
    if (this.passed) throw new Error('PostgresTokenStore: the deadline passed');
  }

  clear(): void {
    clearTimeout(this.timer);
  }

  /** The caller was answered before the deadline without the work (close() ended the pool it waited on). */
  stop(): void {
    this.passed = true;
    clearTimeout(this.timer);
  }
}

/** A row of the save statement (its select list is TOKEN_COLUMNS) as a TokenRow. */
function columnsToRow(values: Array<string | null>): kit.TokenRow {
  const row: Partial<kit.TokenRow> = {};
  kit.TOKEN_COLUMNS.forEach((column, index) => {
    row[column] = values[index] ?? null;
  });
  return row as kit.TokenRow;
}

/**
 * Runs `work` in a READ COMMITTED transaction bounded on the server by the deadline (see `beginWrite`).
 * COMMIT is sent only while the deadline has not passed: past it, the caller destroys the connection, which
 * rolls the transaction back.
 */
async function transaction<T>(client: pg.PoolClient, deadline: Deadline, work: () => Promise<T>): Promise<T> {
  deadline.check();
  await client.query(beginWrite(deadline.remainingMs()));
  try {
    const result = await work();
    deadline.check(); // no COMMIT after the deadline
    await client.query('COMMIT');
    return result;
  } catch (error) {
    // A failed statement left the transaction aborted: end it before the next attempt or the pool.
    if (!deadline.passed) await client.query('ROLLBACK').catch(ignore); // a dead connection fails the next step anyway
    throw error;
  }
}

/** The values a save writes to the btree-indexed columns, to tell which one was too long for its index. */
type IndexedValues = Partial<Record<(typeof BTREE_COLUMNS)[number], string | null>>;

/** The btree-indexed column(s) whose value cannot fit a btree entry, when PostgreSQL did not name the index. */
function tooLongForBtree(indexed: IndexedValues | undefined): string {
  // An entry holds the value plus a 12-byte header at least; compression only ever makes it smaller.
  const columns = BTREE_COLUMNS.filter((column) => Buffer.byteLength(indexed?.[column] ?? '') > BTREE_MAX_ENTRY_BYTES - 12);
  return columns.length === 0 ? 'of the token table' : columns.join(' or ');
}

function isLostRace(error: unknown): boolean {
  return LOST_RACE_SQLSTATES.has(kit.driverErrorCode(error));
}

function isSetupRace(error: unknown): boolean {
  return (
    isLostRace(error) ||
    (kit.driverErrorCode(error) === '23505' && CATALOG_RACE_CONSTRAINTS.has(String((error as { constraint?: unknown }).constraint)))
  );
}

function isUniqueViolation(error: unknown, constraint: string): boolean {
  return kit.driverErrorCode(error) === '23505' && (error as { constraint?: unknown }).constraint === constraint;
}
