/**
 * What each guarantee of a MySQL/MariaDB save of a refreshed token costs: the raw driver's UPDATE (the bench's
 * floor), then one step at a time towards the store's own statement, then the store itself, all interleaved
 * in one run on one table of `--tokens` rows (default 100,000). Each step adds one thing to the step before it;
 * the last statement step is the statement the store sends, captured from the store itself. Medians of
 * `--operations` calls (default 1,000) per step, in µs, and each step's ratio to the floor.
 *
 *   pnpm --filter @crm/bench ladder:mysql [-- --tokens 1000 --operations 2000]
 *
 * MariaDB 10.5+ only (the store's one-statement save needs INSERT ... RETURNING).
 */

import { randomBytes } from 'node:crypto';
import { OAuthToken, UserSignature } from '@crm/core';
import { newTokenId } from '@crm/core/store-kit';
import { MySQLTokenStore } from '@crm/store-mysql';
import { ensureMySQL } from '@crm/test-services/mysql';
import { type Connection, createConnection, createPool, type Pool, type RowDataPacket } from 'mysql2/promise';
import { bulkInsert } from './backends/mysql.js';
import { type LadderStep, ladderOption, runLadder, stepValues, storeStep } from './ladder.js';
import { COLUMNS, pickIndex, userName } from './tokens.js';

/** mysql2's callback pool under the promise one, as the store uses it. */
interface CoreConnection {
  execute: (...args: unknown[]) => unknown;
  release(): void;
}
interface CorePool {
  getConnection(callback: (error: unknown, got: CoreConnection) => void): void;
}

const SIZE = ladderOption('tokens', 100_000);
const OPERATIONS = ladderOption('operations', 1_000);

const service = await ensureMySQL();
const table = `ladder_${randomBytes(4).toString('hex')}`;
const t = `\`${table}\``;
const admin = await createConnection({ uri: service.url });
const pool: Pool = createPool({ uri: service.url, trace: false });
const store = new MySQLTokenStore({ pool, table });
/** The pool of the step that times a pool's checkout without the store: a pool of its own, as every step has. */
const stepPool: Pool = createPool({ uri: service.url, trace: false });
let connection: Connection | null = null;
const stepConnections: Connection[] = [];
try {
  const [version] = await admin.query<RowDataPacket[]>('SELECT VERSION() AS version');
  await store.migrate();
  await bulkInsert(admin, table, SIZE);
  await admin.query(`ANALYZE TABLE ${t}`);

  // The store's own statement: the SQL of the first statement a save by user name sends.
  const sent: string[] = [];
  const core = (pool as unknown as { pool: CorePool }).pool;
  const getConnection = core.getConnection;
  const patched: Array<() => void> = [];
  core.getConnection = (callback) =>
    getConnection.call(core, (error, got) => {
      if (got && !Object.hasOwn(got, 'execute')) {
        const execute = got.execute;
        got.execute = (...args: unknown[]) => {
          sent.push(String(args[0]));
          return execute.apply(got, args);
        };
        patched.push(() => delete (got as { execute?: unknown }).execute);
      }
      callback(error, got);
    });
  await store.saveToken(new OAuthToken({ userSignature: new UserSignature(userName(0)), accessToken: 'warm-up' }));
  core.getConnection = getConnection;
  for (const restore of patched) restore();
  const storeStatement = sent.find((sql) => sql.includes('ON DUPLICATE KEY UPDATE'));
  if (storeStatement === undefined) throw new Error(`the store sent no one-statement save: ${sent.join(' | ')}`);

  connection = await createConnection({ uri: service.url, trace: false });
  const [clock] = await connection.query<RowDataPacket[]>(
    "SET STATEMENT time_zone = '+00:00' FOR SELECT UNIX_TIMESTAMP(SYSDATE(6)) AS now",
  );
  const farDeadline = (Number(clock[0]?.now) + 3600).toFixed(6);
  const updated = COLUMNS.filter((column) => column !== 'id');
  const keep = (column: string) => `${t}.${column} = COALESCE(VALUES(${column}), ${t}.${column})`;
  const deadline = 'UNIX_TIMESTAMP(SYSDATE(6)) < CAST(? AS DECIMAL(17,6))';
  const readable =
    `${t}.id <> '' AND INSTR(CONCAT_WS(X'', ${COLUMNS.map((column) => `${t}.${column}`).join(', ')}), X'00') = 0 AND ` +
    `(${t}.expiry_time IS NULL OR CHAR_LENGTH(${t}.expiry_time) = 0 OR ${t}.expiry_time REGEXP '^-?([0-9]{1,15}|[0-7][0-9]{15}|8[0-5][0-9]{14}|86[0-3][0-9]{13}|8640000000000000)$')`;
  const setStatement = "SET STATEMENT max_statement_time = CAST(? AS DOUBLE), sql_mode = 'STRICT_ALL_TABLES', time_zone = '+00:00' FOR ";
  /** `onlyInTime`: the row to insert comes from `SELECT ... FROM DUAL WHERE <deadline>`, as the store makes it. */
  const upsert = (id: string, guard: string | null, returning: boolean, onlyInTime = false) =>
    `INSERT INTO ${t} (${COLUMNS.join(', ')}) ` +
    (onlyInTime
      ? `SELECT ${id}, ${updated.map(() => '?').join(', ')} FROM DUAL WHERE ${deadline} `
      : `VALUES (${id}, ${updated.map(() => '?').join(', ')}) `) +
    'ON DUPLICATE KEY UPDATE ' +
    [...(guard === null ? [] : [`${t}.id = IF(${guard}, ${t}.id, NULL)`]), ...updated.map(keep)].join(', ') +
    (returning ? ` RETURNING ${COLUMNS.join(', ')}` : '');

  /**
   * The token's values for round `round` of step `step`: a known user, a refreshed access token and expiry of
   * that step's own (InnoDB skips a row whose values do not change), nothing else.
   */
  const values = (round: number, step: number) => {
    const { accessToken, expiryTime } = stepValues(round, step);
    return COLUMNS.slice(1).map((column) =>
      column === 'user_name'
        ? userName(pickIndex(round, SIZE))
        : column === 'access_token'
          ? accessToken
          : column === 'expiry_time'
            ? String(expiryTime)
            : null,
    );
  };
  /** A fresh id per save, drawn as the store draws one for a save without an id. */
  let counter = 0;
  const freshId = () => {
    counter++;
    return newTokenId();
  };
  /** Ids in ascending order instead: every attempted insert lands on the same last page of the primary key. */
  const ascendingId = () => `~${(counter++).toString(36).padStart(9, '0')}`;
  /** A step's statement, on a connection of the step's own: every step's connection sits idle as long between turns. */
  const run = (sql: string, params: (round: number) => unknown[]) => {
    let own: Promise<Connection> | null = null;
    return async (round: number) => {
      own ??= createConnection({ uri: service.url, trace: false }).then((opened) => {
        stepConnections.push(opened);
        return opened;
      });
      await (await own).execute(sql, params(round) as (string | number | null)[]);
    };
  };

  const steps: LadderStep[] = [
    {
      name: 'floor: UPDATE access_token, expiry_time WHERE user_name = ?',
      run: run(`UPDATE ${t} SET access_token = ?, expiry_time = ? WHERE user_name = ?`, (round) => {
        const [, , , , accessToken, , expiryTime] = values(round, 0);
        return [accessToken, expiryTime, userName(pickIndex(round, SIZE))];
      }),
    },
    {
      name: '+ every column, absent ones kept: INSERT ... ON DUPLICATE KEY UPDATE col = COALESCE(...) (new user or known, one statement)',
      run: run(upsert('?', null, false), (round) => [freshId(), ...values(round, 1)]),
    },
    {
      name: '+ RETURNING the stored row (the write-back: stored id and fields)',
      run: run(upsert('?', null, true), (round) => [freshId(), ...values(round, 2)]),
    },
    {
      name: '+ SET STATEMENT max_statement_time, strict sql_mode, UTC (time bound, no silent truncation)',
      run: run(setStatement + upsert('?', null, true), (round) => [4.5, freshId(), ...values(round, 3)]),
    },
    {
      name: "+ the server-clock deadline, on the row to insert and after the row's lock (no late write)",
      run: run(setStatement + upsert('?', deadline, true, true), (round) => [
        4.5,
        freshId(),
        ...values(round, 4),
        farDeadline,
        farDeadline,
      ]),
    },
    {
      name: '+ a stored row that cannot be read is never overwritten (CORRUPT_DATA)',
      run: run(setStatement + upsert('?', `${deadline} AND ${readable}`, true, true), (round) => [
        4.5,
        freshId(),
        ...values(round, 5),
        farDeadline,
        farDeadline,
      ]),
    },
    {
      name: "+ autocommit checked, a fresh id never renames another token: the store's statement",
      run: run(storeStatement, (round) => [4.5, freshId(), ...values(round, 6), farDeadline, farDeadline]),
    },
    {
      name: "the store's statement with ascending instead of random fresh ids (for comparison only)",
      run: run(storeStatement, (round) => [4.5, ascendingId(), ...values(round, 9), farDeadline, farDeadline]),
    },
    {
      name: "the store's statement on a connection taken from a pool and given back per save, as the store does",
      run: (round) =>
        new Promise<void>((resolve, reject) => {
          const params = [4.5, freshId(), ...values(round, 8), farDeadline, farDeadline];
          (stepPool as unknown as { pool: CorePool }).pool.getConnection((error, got) => {
            if (error) return reject(error);
            got.execute(storeStatement, params, (failure: unknown) => {
              got.release();
              if (failure) reject(failure);
              else resolve();
            });
          });
        }),
    },
    storeStep('the store: saveToken (pool checkout, argument checks, time bound, row to token, write-back)', store, SIZE, 7),
  ];
  await runLadder(`${version[0]?.version}, ${SIZE.toLocaleString('en')} tokens`, steps, OPERATIONS);
} finally {
  await connection?.end();
  for (const opened of stepConnections) await opened.end();
  await store.close();
  await pool.end();
  await stepPool.end();
  await admin.query(`DROP TABLE IF EXISTS ${t}`);
  await admin.end();
  await service.stop();
}
