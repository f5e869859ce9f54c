import {
  checkIdArgument,
  checkSaveArgument,
  checkTokenArgument,
  copyStoredFields,
  fillAbsentFields,
  lookupKey,
  NETWORK_ERROR_CODES,
  newTokenId,
  type OAuthToken,
  type TokenStore,
  TokenStoreError,
  type TokenStoreOperation,
} from '@crm/core';
import pg from 'pg';
import {
  buildSql,
  quoteIdentifier,
  SCHEMA_NAME_PATTERN,
  STORE_NAME,
  type Statement,
  TABLE_NAME_PATTERN,
  type TokenSql,
  tokenFromPgRow,
  tokenToParams,
} from './sql.js';

interface CommonOptions {
  /** PostgreSQL schema of the table. Default `public`. Letters, digits and `_`; case is kept (names are quoted). */
  schema?: string;
  /** Table name. Default `oauthtoken` (Zoho's). Letters, digits and `_`, at most 52 characters. */
  table?: string;
  /** Every operation settles within this many milliseconds; past it, BACKEND_UNAVAILABLE. Default 5000. */
  operationTimeoutMs?: number;
  /** Create schema, table and indexes on first use. Default true; set false when you run `migrate()` yourself. */
  autoMigrate?: boolean;
}

/** Your own pool: the store never ends it. Give it `connectionTimeoutMillis` and `query_timeout` so a dead server frees its clients. */
export interface PostgresPoolOptions extends CommonOptions {
  pool: pg.Pool;
}

/** The store makes its own pool (with timeouts from `operationTimeoutMs`) and ends it in `close()`. */
export interface PostgresConnectionOptions extends CommonOptions {
  connectionString: string;
  /** Further pool settings (`max`, `ssl`, ...). */
  poolConfig?: Omit<pg.PoolConfig, 'connectionString'>;
}

export type PostgresTokenStoreOptions = PostgresPoolOptions | PostgresConnectionOptions;

const DEFAULT_TIMEOUT_MS = 5000;
/** A save retries only when a concurrent change slipped between its lookup and its write. */
const MAX_SAVE_ATTEMPTS = 5;
/** SQLSTATEs that mean "not now": admin shutdown, crash shutdown, starting up, statement timeout, too many connections, lock timeout. */
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '57014', '53300', '55P03']);
/** pg's own messages for connect timeouts, read timeouts and dropped connections. */
const UNAVAILABLE_MESSAGE = /timeout|terminated|Connection ended|not queryable|connection error/i;

/** Zoho CRM OAuth tokens in one PostgreSQL table. */
export class PostgresTokenStore implements TokenStore {
  readonly schema: string;
  readonly table: string;
  readonly operationTimeoutMs: number;
  private readonly pool: pg.Pool;
  private readonly ownsPool: boolean;
  private readonly autoMigrate: boolean;
  private readonly sql: TokenSql;
  private schemaReady: Promise<void> | null = null;
  private closed = false;

  constructor(options: PostgresTokenStoreOptions) {
    const invalid = (message: string) => TokenStoreError.invalidArgument({ store: STORE_NAME, operation: 'open' }, message);
    if (typeof options !== 'object' || options === null) throw invalid('options must be an object');
    this.schema = options.schema ?? 'public';
    this.table = options.table ?? 'oauthtoken';
    if (typeof this.schema !== 'string' || !SCHEMA_NAME_PATTERN.test(this.schema)) {
      throw invalid('schema must match /^[A-Za-z_][A-Za-z0-9_]{0,62}$/');
    }
    if (typeof this.table !== 'string' || !TABLE_NAME_PATTERN.test(this.table)) {
      throw invalid('table must match /^[A-Za-z_][A-Za-z0-9_]{0,51}$/');
    }
    this.operationTimeoutMs = options.operationTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isInteger(this.operationTimeoutMs) || this.operationTimeoutMs <= 0)
      throw invalid('operationTimeoutMs must be a positive integer');
    this.autoMigrate = options.autoMigrate ?? true;
    this.sql = buildSql(this.schema, this.table);

    if ('pool' in options && options.pool !== undefined) {
      if (typeof options.pool?.query !== 'function') throw invalid('pool must be a pg.Pool');
      this.pool = options.pool;
      this.ownsPool = false;
    } else if ('connectionString' in options && typeof options.connectionString === 'string') {
      this.pool = new pg.Pool({
        max: 10,
        idleTimeoutMillis: 30000,
        keepAlive: true,
        ...options.poolConfig,
        connectionString: options.connectionString,
        // Bounded at both ends: the client gives up waiting (and drops the connection), the server cancels the statement.
        connectionTimeoutMillis: options.poolConfig?.connectionTimeoutMillis ?? this.operationTimeoutMs,
        query_timeout: options.poolConfig?.query_timeout ?? this.operationTimeoutMs,
        statement_timeout: options.poolConfig?.statement_timeout ?? this.operationTimeoutMs,
      });
      // Idle connections error out when the server restarts; the pool drops them. Without a listener that would crash the process.
      this.pool.on('error', () => {});
      this.ownsPool = true;
    } else {
      throw invalid('pass either { pool } or { connectionString }');
    }
  }

  /** `"schema"."table"`, quoted as the store uses it in SQL. */
  get qualifiedTable(): string {
    return `${quoteIdentifier(this.schema)}.${quoteIdentifier(this.table)}`;
  }

  /** Creates schema, table and indexes if they are missing. Safe to run from many processes at once. */
  async migrate(): Promise<void> {
    await this.run('migrate', async () => {
      await this.pool.query(this.sql.migrate);
      this.schemaReady = Promise.resolve();
    });
  }

  async findToken(token: OAuthToken): Promise<OAuthToken | null> {
    checkTokenArgument(token, STORE_NAME, 'findToken');
    const key = lookupKey(token);
    if (key === null) return null;
    const rows = await this.run('findToken', () => this.query(this.sql.findBy[key.field], [key.value]));
    return rows[0] === undefined ? null : fillAbsentFields(token, tokenFromPgRow(rows[0], 'findToken'));
  }

  async saveToken(token: OAuthToken): Promise<void> {
    checkSaveArgument(token, STORE_NAME);
    const key = lookupKey(token);
    // A token with a user name always has the user-name key (rule 1): an insert race on it merges into the winner's row.
    const mergeOn = key?.field === 'userName' ? 'user_name' : token.id !== null ? 'id' : null;
    const statement = this.sql.save(key?.field ?? null, mergeOn);
    const values: (string | null)[] = [...tokenToParams(token), null];
    if (key !== null) values.push(key.value);
    const row = await this.run('saveToken', async () => {
      for (let attempt = 1; ; attempt++) {
        values[10] = newTokenId(); // fresh on every attempt, in case the last one collided
        try {
          const rows = await this.query(statement, values);
          if (rows[0] !== undefined) return rows[0];
        } catch (error) {
          // 23505 on the primary key: another session inserted this id after our lookup (run again: it now
          // updates), or a generated id collided (run again with a new one).
          if (!(isUniqueViolation(error, `${this.table}_pkey`) && attempt < MAX_SAVE_ATTEMPTS)) throw error;
        }
        if (attempt >= MAX_SAVE_ATTEMPTS) {
          throw TokenStoreError.failure({ store: STORE_NAME, operation: 'saveToken' }, 'the stored token kept changing concurrently');
        }
      }
    });
    copyStoredFields(token, tokenFromPgRow(row, 'saveToken'));
  }

  async deleteToken(id: string): Promise<void> {
    checkIdArgument(id, STORE_NAME, 'deleteToken');
    await this.run('deleteToken', () => this.query(this.sql.deleteById, [id]));
  }

  async getTokens(): Promise<OAuthToken[]> {
    const rows = await this.run('getTokens', () => this.query(this.sql.getAll, []));
    return rows.map((row) => tokenFromPgRow(row, 'getTokens'));
  }

  async deleteTokens(): Promise<void> {
    await this.run('deleteTokens', () => this.query(this.sql.deleteAll, []));
  }

  async findTokenById(id: string): Promise<OAuthToken | null> {
    checkIdArgument(id, STORE_NAME, 'findTokenById');
    const rows = await this.run('findTokenById', () => this.query(this.sql.findById, [id]));
    return rows[0] === undefined ? null : tokenFromPgRow(rows[0], 'findTokenById');
  }

  /** Ends the pool if the store made it; a pool you passed in stays open. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsPool) {
      try {
        await this.pool.end();
      } catch (error) {
        throw this.mapError(error, 'close');
      }
    }
  }

  /** One prepared statement on a pooled connection, after the schema exists. */
  private async query(statement: Statement, values: unknown[]): Promise<Record<string, unknown>[]> {
    await this.ensureSchema();
    const result = await this.pool.query<Record<string, unknown>>({ name: statement.name, text: statement.text, values });
    return result.rows;
  }

  private ensureSchema(): Promise<void> {
    if (!this.autoMigrate) return Promise.resolve();
    this.schemaReady ??= this.pool.query(this.sql.migrate).then(
      () => undefined,
      (error: unknown) => {
        this.schemaReady = null; // try again on the next operation (the server may be back)
        throw error;
      },
    );
    return this.schemaReady;
  }

  /** Runs one operation against a deadline and maps whatever it throws to a TokenStoreError. */
  private async run<T>(operation: TokenStoreOperation, work: () => Promise<T>): Promise<T> {
    const details = { store: STORE_NAME, operation };
    if (this.closed) throw TokenStoreError.failure(details, 'the store is closed');
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(TokenStoreError.unavailable(details, `PostgreSQL did not answer within ${this.operationTimeoutMs} ms`)),
        this.operationTimeoutMs,
      );
    });
    try {
      return await Promise.race([work(), deadline]);
    } catch (error) {
      throw this.mapError(error, operation);
    } finally {
      clearTimeout(timer);
    }
  }

  /** pg errors to codes. The driver's message can quote values, so it stays in `cause` only. */
  private mapError(error: unknown, operation: TokenStoreOperation): TokenStoreError {
    if (TokenStoreError.is(error)) return error;
    const details = { store: STORE_NAME, operation, cause: error };
    const code = typeof (error as { code?: unknown })?.code === 'string' ? (error as { code: string }).code : '';
    if (isUniqueViolation(error, this.sql.userNameIndex)) {
      return TokenStoreError.conflict(details, 'another stored token already has this user name');
    }
    if (code === '22001') {
      const limit = /\((\d+)\)/.exec(error instanceof Error ? error.message : '')?.[1];
      return TokenStoreError.valueTooLong(details, 'of the token table', Number(limit ?? 0));
    }
    if (code === '42P01' || code === '3F000') this.schemaReady = null; // table or schema dropped behind our back: recreate next time
    const message = error instanceof Error ? error.message : '';
    if (
      code.startsWith('08') ||
      UNAVAILABLE_SQLSTATES.has(code) ||
      NETWORK_ERROR_CODES.has(code) ||
      (code === '' && UNAVAILABLE_MESSAGE.test(message))
    ) {
      return TokenStoreError.unavailable(details, `PostgreSQL is not reachable${code === '' ? '' : ` (${code})`}`);
    }
    return TokenStoreError.failure(details, `PostgreSQL reported an error${code === '' ? '' : ` (SQLSTATE ${code})`}`);
  }
}

function isUniqueViolation(error: unknown, constraint: string): boolean {
  const fields = error as { code?: unknown; constraint?: unknown } | null;
  return fields?.code === '23505' && fields.constraint === constraint;
}
