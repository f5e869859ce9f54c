/**
 * Every SQL statement of the store, built once per table from validated, quoted identifiers.
 * Values always travel as parameters; only the identifiers below (and whole numbers the store computes)
 * are ever part of the text.
 */
import { createHash } from 'node:crypto';
import { LOOKUP_COLUMNS, type LookupField, TOKEN_COLUMNS } from '@crm/core/store-kit';

/** The store's name in every TokenStoreError. */
export const STORE_NAME = 'PostgresTokenStore';

/**
 * Plain identifiers only. The table name is kept short enough that the index names derived from it
 * stay within PostgreSQL's 63-byte limit (longer names would be silently truncated and could collide).
 */
export const SCHEMA_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
export const TABLE_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,51}$/;

/** Double-quotes an identifier (after validation this is defence in depth, not the only guard). */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** The user-name unique index: partial, so tokens without a user name never collide. */
const USER_NAME_PREDICATE = `user_name IS NOT NULL AND user_name <> ''`;

const COLUMN_LIST = TOKEN_COLUMNS.join(', ');

/**
 * The token columns findToken looks up (`<name>_token`), each with a hash index `<table>_<name>_hx`.
 * Earlier versions indexed them with btree indexes `<table>_<name>_ix`, which `migrate` drops.
 */
const HASHED_COLUMNS = ['access', 'grant', 'refresh'] as const;

/**
 * The largest btree index entry on PostgreSQL's 8 KB pages, in bytes (after compression). The primary key
 * and the user-name unique index are btrees, so it bounds `id` and `user_name`.
 */
export const BTREE_MAX_ENTRY_BYTES = 2704;

/** Statement text plus a name derived from it, so pg prepares it once per connection. */
export interface Statement {
  name: string;
  text: string;
}

function statement(text: string): Statement {
  return { name: `crm_${createHash('sha1').update(text).digest('hex').slice(0, 24)}`, text };
}

/**
 * Opens the transaction schema setup runs in. READ COMMITTED whatever the server, database or pool defaults
 * to, bounded on the server by what is left of the operation's deadline (see `WRITE`). `remainingMs` is a
 * whole number the store computes, never a caller's value.
 */
export function beginWrite(remainingMs: number): string {
  const ms = Math.max(1, Math.ceil(remainingMs));
  return `BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL statement_timeout = ${ms}; SET LOCAL idle_in_transaction_session_timeout = ${ms}`;
}

/**
 * The transaction every write runs in, sent with the write's statement as one pipeline (see pipeline.ts):
 * `begin`, `deadline`, the statement, `commit`.
 *
 * READ COMMITTED whatever the server, database or pool defaults to: the save statement merges against the
 * row version it locks, which only this level allows (under REPEATABLE READ or SERIALIZABLE a concurrent
 * update of that row is error 40001).
 *
 * COMMIT is on its way with the statement, so the server alone must stop a write the caller was told had
 * failed. `deadline` does, on the server's own clock: $1 is the write's deadline there, in epoch milliseconds
 * (see clock.ts). Reached in time, it sets `statement_timeout` and `idle_in_transaction_session_timeout`
 * (local to the transaction) to what is left, so the statement cannot outlast it either; reached later (the
 * request was held up on the network, or the server stalled before reading it), it fails with a division
 * by zero (`DEADLINE_PASSED_SQLSTATE`), computed before either setting is changed: the server skips the
 * statement, and COMMIT ends a failed transaction.
 */
export const WRITE = {
  begin: statement('BEGIN ISOLATION LEVEL READ COMMITTED'),
  deadline: statement(
    `SELECT set_config('statement_timeout', checked.ms, true), set_config('idle_in_transaction_session_timeout', checked.ms, true)
     FROM (SELECT (remaining.ms / (remaining.ms > 0)::int)::text AS ms
           FROM (SELECT floor($1::float8 - 1000 * extract(epoch FROM clock_timestamp())::float8)::int8 AS ms) AS remaining) AS checked`,
  ),
  commit: statement('COMMIT'),
};

/** The error of `WRITE.deadline` past the deadline (division by zero: no statement of the store divides). */
export const DEADLINE_PASSED_SQLSTATE = '22012';

/** The server's clock, in epoch milliseconds (as text: exact whatever type parsers the pool has). */
export const SERVER_NOW = `SELECT (1000 * extract(epoch FROM clock_timestamp()))::text AS now_ms`;

/**
 * The server-side bound of a write with `remainingMs` left of its deadline: it ends 50 ms (or a tenth of
 * what is left, when less) before the caller's deadline, so that a statement that ends just in time still
 * has its COMMIT done before the caller is answered.
 */
export function serverBoundMs(remainingMs: number): number {
  return Math.max(1, Math.floor(remainingMs - Math.min(50, remainingMs / 10)));
}

/**
 * `withLock`'s advisory lock: the two int4 keys are the first 8 bytes of sha256 over schema, table and key,
 * so stores on different tables never share a lock, and the key (any text) never reaches SQL as text. The
 * two-key form is a key space apart from the one-bigint locks of schema setup (`lockTable`, `lockSchema`).
 */
export function lockIds(schema: string, table: string, key: string): [number, number] {
  const digest = createHash('sha256')
    .update(JSON.stringify([schema, table, key]))
    .digest();
  return [digest.readInt32BE(0), digest.readInt32BE(4)];
}

/**
 * Opens the transaction a lock is held in. The server ends a session left idle in it for `leaseMs` (a holder
 * that froze or lost its network), which frees the lock; the holder's renewals, every third of that, keep it
 * from idling that long. Both numbers are whole numbers the store checked, never a caller's text.
 */
export function beginLock(leaseMs: number, timeoutMs: number): string {
  return `BEGIN; SET LOCAL idle_in_transaction_session_timeout = ${Math.ceil(leaseMs)}; SET LOCAL statement_timeout = ${Math.ceil(timeoutMs)}`;
}

/** Tries once, without waiting, to take the lock for the rest of the transaction. $1, $2: `lockIds`. */
export const TRY_LOCK = statement('SELECT pg_try_advisory_xact_lock($1::int4, $2::int4) AS locked');

/** True while this session holds the lock (pg_locks shows two-key advisory locks with objsubid 2). $1, $2: `lockIds`. */
export const STILL_HELD = statement(`SELECT EXISTS (
  SELECT 1 FROM pg_locks
  WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND classid = $1::int4::oid AND objid = $2::int4::oid
    AND objsubid = 2 AND granted
) AS held`);

/**
 * The unique key an insert that lost a race merges into: the user name when the token has one, else the id
 * the token brings. A generated id never merges: a collision with another token is retried with a new id.
 */
export type MergeKey = 'user_name' | 'id' | null;

/** What the save statement depends on: whether the token has an id, its lookup field (if any), and `MergeKey`. */
export interface SaveShape {
  hasId: boolean;
  field: LookupField | null;
  mergeOn: MergeKey;
}

/** What the catalog says about the store's schema, table and index names (read by `SchemaSetup.check`). */
export interface CatalogState {
  schemaExists: boolean;
  /** A relation with the table's name exists in the schema (what CREATE TABLE IF NOT EXISTS looks at). */
  tableExists: boolean;
  /** The relations of the schema named like one of the store's indexes, old or new: name to `relkind` (`i` = index). */
  relations: Record<string, string>;
}

/**
 * The statements of `migrate()` and of the first operation with `createSchema`. The store reads the catalog
 * (`check`) without any lock and stops there when `changes` is empty, the usual case. Else, in one READ
 * COMMITTED transaction, it takes `lockTable`, reads the catalog again, takes `lockSchema` as well if the
 * schema is missing (and reads once more), and runs `changes` of what it read last.
 */
export interface SchemaSetup {
  /** One row: schema_exists, table_exists, relations (json object of name to relkind). */
  check: Statement & { values: [string, string, string[]] };
  /** Advisory lock per table: one process at a time changes a table's layout. */
  lockTable: string;
  /**
   * Advisory lock per schema, taken after `lockTable` (always in that order) and only when the schema is
   * missing: concurrent `CREATE SCHEMA IF NOT EXISTS` of one name fail with 23505 (pg_namespace_nspname_index),
   * also from stores on different tables, whose table locks do not meet.
   */
  lockSchema: string;
  /**
   * The DDL that makes `state` the current layout, in order; empty when nothing is missing. Changes to an
   * existing table start with LOCK TABLE in the strongest mode any of them needs: SHARE ROW EXCLUSIVE to
   * create indexes, ACCESS EXCLUSIVE when old indexes are dropped. Taking a weaker lock first and a stronger
   * one later (CREATE INDEX: SHARE, then DROP INDEX: ACCESS EXCLUSIVE) deadlocks with a concurrent save, which
   * holds ACCESS SHARE on the table from parsing its statement while it waits for ROW EXCLUSIVE.
   */
  changes(state: CatalogState): string[];
}

export interface TokenSql {
  /** Creates schema, table and indexes if missing and replaces the btree lookup indexes of earlier versions by hash ones. */
  setup: SchemaSetup;
  findBy: Record<LookupField, Statement>;
  findById: Statement;
  getAll: Statement;
  deleteById: Statement;
  deleteAll: Statement;
  /** saveToken's statement for a token of this shape. */
  save(shape: SaveShape): Statement;
  /**
   * saveToken of a token with an id, tried first: the merge into the row with that id and nothing else, the
   * plan of a hand-written `UPDATE ... WHERE id = $1`. No row: the id is not stored, and `save` runs. $1..$10 as in `save`.
   */
  updateById: Statement;
  /** Name of the primary key: a violation of it on insert means "lost a race", and the save runs again. */
  primaryKey: string;
  /** Name of the partial unique index on user_name: a violation of it means CONFLICT. */
  userNameIndex: string;
  /** Index name to the column it is on, to name the column when a value is too long for its index (SQLSTATE 54000). */
  indexColumns: Record<string, string>;
}

/** The WHERE clause of a lookup. The user-name form repeats the index predicate so the partial index is usable in generic plans. */
function lookupCondition(field: LookupField, param: string, prefix = ''): string {
  const column = `${prefix}${LOOKUP_COLUMNS[field]}`;
  return field === 'userName' ? `${column} = ${param} AND ${column} <> ''` : `${column} = ${param}`;
}

export function buildSql(schema: string, table: string): TokenSql {
  const qualified = `${quoteIdentifier(schema)}.${quoteIdentifier(table)}`;
  const userNameIndex = `${table}_user_uq`;
  // Constants for pg_advisory_xact_lock, computed here, so no value is spliced into SQL. The schema's key
  // hashes a text no table's key can (a schema name has no dot).
  const lockKey = (name: string) => createHash('sha1').update(name).digest().readBigInt64BE(0).toString();
  const createIndexes: Array<[string, string]> = [
    [
      userNameIndex,
      `CREATE UNIQUE INDEX IF NOT EXISTS ${quoteIdentifier(userNameIndex)} ON ${qualified} (user_name) WHERE ${USER_NAME_PREDICATE}`,
    ],
    // Hash indexes for the token lookups: equality is all findToken and the save statement need, and a hash
    // index keeps only a hash code, so a token of any length fits (a btree entry is capped at about 2.7 KB).
    ...HASHED_COLUMNS.map((column): [string, string] => {
      const name = `${table}_${column}_hx`;
      return [name, `CREATE INDEX IF NOT EXISTS ${quoteIdentifier(name)} ON ${qualified} USING hash (${column}_token)`];
    }),
  ];
  // Tables made by earlier versions have whole-value btree indexes on these columns: replaced by the hash ones.
  const oldIndexes = HASHED_COLUMNS.map((column) => `${table}_${column}_ix`);
  const createTable = `CREATE TABLE IF NOT EXISTS ${qualified} (
      id text PRIMARY KEY,
      user_name text,
      client_id text,
      client_secret text,
      refresh_token text,
      access_token text,
      grant_token text,
      expiry_time bigint,
      redirect_url text,
      api_domain text
    )`;
  const setup: SchemaSetup = {
    check: {
      ...statement(`SELECT n.oid IS NOT NULL AS schema_exists,
       EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = n.oid AND c.relname = $2::text) AS table_exists,
       COALESCE((SELECT json_object_agg(c.relname, c.relkind::text) FROM pg_class c
                 WHERE c.relnamespace = n.oid AND c.relname = ANY ($3::text[])), '{}') AS relations
FROM (SELECT $1::text AS name) AS wanted LEFT JOIN pg_namespace n ON n.nspname = wanted.name`),
      values: [schema, table, [...createIndexes.map(([name]) => name), ...oldIndexes]],
    },
    lockTable: `SELECT pg_advisory_xact_lock(${lockKey(`${schema}.${table}`)})`,
    lockSchema: `SELECT pg_advisory_xact_lock(${lockKey(schema)})`,
    changes(state) {
      const steps: string[] = [];
      if (!state.schemaExists) steps.push(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(schema)}`);
      const missing = createIndexes.filter(([name]) => state.relations[name] === undefined).map(([, text]) => text);
      const drops = oldIndexes
        .filter((name) => state.relations[name] === 'i')
        .map((name) => `DROP INDEX IF EXISTS ${quoteIdentifier(schema)}.${quoteIdentifier(name)}`);
      if (!state.tableExists) {
        steps.push(createTable);
      } else if (missing.length > 0 || drops.length > 0) {
        steps.push(`LOCK TABLE ${qualified} IN ${drops.length > 0 ? 'ACCESS EXCLUSIVE' : 'SHARE ROW EXCLUSIVE'} MODE`);
      }
      return [...steps, ...missing, ...drops];
    },
  };
  const indexColumns: Record<string, string> = { [`${table}_pkey`]: 'id', [userNameIndex]: 'user_name' };
  for (const column of HASHED_COLUMNS) {
    indexColumns[`${table}_${column}_hx`] = `${column}_token`;
    indexColumns[`${table}_${column}_ix`] = `${column}_token`; // an old btree index, on a table not migrated yet
  }

  const findBy = Object.fromEntries(
    (Object.keys(LOOKUP_COLUMNS) as LookupField[]).map((field) => [
      field,
      statement(`SELECT ${COLUMN_LIST} FROM ${qualified} WHERE ${lookupCondition(field, '$1')} LIMIT 1`),
    ]),
  ) as Record<LookupField, Statement>;

  const saveCache = new Map<string, Statement>();
  const save = (shape: SaveShape): Statement => {
    const cacheKey = `${shape.hasId}/${shape.field}/${shape.mergeOn}`;
    let cached = saveCache.get(cacheKey);
    if (cached === undefined) {
      cached = statement(saveStatement(qualified, shape));
      saveCache.set(cacheKey, cached);
    }
    return cached;
  };

  const merge = TOKEN_COLUMNS.filter((column) => column !== 'id')
    .map((column, index) => `${column} = COALESCE($${index + 2}::${column === 'expiry_time' ? 'bigint' : 'text'}, stored.${column})`)
    .join(', ');
  return {
    setup,
    findBy,
    updateById: statement(`UPDATE ${qualified} AS stored SET ${merge} WHERE stored.id = $1::text RETURNING ${COLUMN_LIST}`),
    findById: statement(`SELECT ${COLUMN_LIST} FROM ${qualified} WHERE id = $1`),
    getAll: statement(`SELECT ${COLUMN_LIST} FROM ${qualified}`),
    deleteById: statement(`DELETE FROM ${qualified} WHERE id = $1`),
    deleteAll: statement(`DELETE FROM ${qualified}`),
    save,
    primaryKey: `${table}_pkey`,
    userNameIndex,
    indexColumns,
  };
}

/**
 * One statement for saveToken: core's save plan (`planSave`) restated in SQL, so a save is one
 * statement however many processes write. Parameters: $1..$10 the token's columns in TOKEN_COLUMNS order
 * (null = absent), $11 the new id used when inserting a token without one, $12 the lookup value.
 *
 * The target is the stored row with the token's id (`by_id`, only when the token has one), else the row
 * the findToken rules match (`by_key`). The update merges into it: present values replace, absent ones keep
 * the stored value (COALESCE against the row version the UPDATE locked, so concurrent writes are not lost).
 * The common saves thus run the plan of a hand-written `UPDATE ... WHERE id = $1` or `... WHERE user_name =
 * $12`: one probe of the primary key or the user-name index. Other lookup keys are not unique, so `target`
 * picks one matching row first. When no row matched, `inserted` adds the token; when another session
 * inserted the same user name (or given id) in the meantime, ON CONFLICT merges into that row instead of
 * failing. Races this cannot absorb (the picked target was deleted meanwhile: no row returned; 23505 on
 * the primary key from an insert racing on the other unique key, or a generated id that collided) are run
 * again by the store. An UPDATE that renames onto another token's user name violates the partial unique
 * index: that is CONFLICT, and the statement changes nothing.
 */
function saveStatement(qualified: string, shape: SaveShape): string {
  const { hasId, field, mergeOn } = shape;
  const values = TOKEN_COLUMNS.filter((column) => column !== 'id');
  const merge = values.map((column) => `${column} = COALESCE(input.${column}, stored.${column})`).join(', ');
  const steps: string[] = [];
  // Each later step runs only when the ones before it found nothing (a row is never updated twice).
  const unmatched: string[] = [];
  if (hasId) {
    steps.push(`by_id AS (
  UPDATE ${qualified} AS stored SET ${merge}
  FROM input WHERE stored.id = $1
  RETURNING stored.*
)`);
    unmatched.push('NOT EXISTS (SELECT 1 FROM by_id)');
  }
  const guard = (conditions: string[]) => conditions.map((condition) => ` AND ${condition}`).join('');
  if (field === 'userName') {
    // The user name is unique: the UPDATE finds its row itself.
    steps.push(`by_key AS (
  UPDATE ${qualified} AS stored SET ${merge}
  FROM input WHERE ${lookupCondition(field, '$12', 'stored.')}${guard(unmatched)}
  RETURNING stored.*
)`);
    unmatched.push('NOT EXISTS (SELECT 1 FROM by_key)');
  } else if (field !== null) {
    steps.push(`target AS (
  SELECT id FROM ${qualified} WHERE ${lookupCondition(field, '$12')}${guard(unmatched)} LIMIT 1
),
by_key AS (
  UPDATE ${qualified} AS stored SET ${merge}
  FROM input, target WHERE stored.id = target.id
  RETURNING stored.*
)`);
    unmatched.push('NOT EXISTS (SELECT 1 FROM target)');
  }
  const conflictTarget = mergeOn === 'user_name' ? `(user_name) WHERE ${USER_NAME_PREDICATE}` : '(id)';
  const onConflict =
    mergeOn === null
      ? ''
      : `ON CONFLICT ${conflictTarget} DO UPDATE
  SET ${values.map((column) => `${column} = COALESCE(EXCLUDED.${column}, stored.${column})`).join(', ')}`;
  steps.push(`inserted AS (
  INSERT INTO ${qualified} AS stored (${COLUMN_LIST})
  SELECT COALESCE(input.id, $11::text), ${values.map((column) => `input.${column}`).join(', ')}
  FROM input${unmatched.length === 0 ? '' : `\n  WHERE ${unmatched.join(' AND ')}`}
  ${onConflict}
  RETURNING stored.*
)`);
  const results = [hasId ? 'by_id' : null, field === null ? null : 'by_key', 'inserted'].filter((name) => name !== null);
  return `WITH input AS (
  SELECT $1::text AS id, $2::text AS user_name, $3::text AS client_id, $4::text AS client_secret,
         $5::text AS refresh_token, $6::text AS access_token, $7::text AS grant_token,
         $8::bigint AS expiry_time, $9::text AS redirect_url, $10::text AS api_domain
),
${steps.join(',\n')}
${results.map((name) => `SELECT ${COLUMN_LIST} FROM ${name}`).join('\nUNION ALL\n')}`;
}
