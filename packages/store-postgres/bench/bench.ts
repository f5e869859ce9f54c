/**
 * findToken by user name, and saveToken as an update by user name, as TokenManager's refresh by id, and as
 * an insert of a new user, with 1,000 and 100,000 stored tokens, next to raw pg sending (a) the very
 * statement the store sends, in autocommit, and (b) the plain hand-written statement (the floor), prepared,
 * all on one pooled connection. Run with `pnpm bench`; it uses POSTGRES_URL, 127.0.0.1:5432 or a throwaway server.
 */
import { randomBytes } from 'node:crypto';
import { OAuthToken, UserSignature } from '@crm/core';
import { newTokenId, TOKEN_COLUMNS, tokenToValues } from '@crm/core/store-kit';
import { type ComparisonRow, interleavedMedians, printComparison } from '@crm/test-services/bench';
import { ensurePostgres } from '@crm/test-services/postgres';
import pg from 'pg';
import { PostgresTokenStore } from '../src/index.js';
import { buildSql } from '../src/sql.js';

const SIZES = [1_000, 100_000];
const OPERATIONS = 2_000;
const WARMUP = 200;
const SCHEMA = 'crm_bench';

const userName = (index: number) => `user${index}@zylker.com:6000123`;
const randomUser = (size: number) => Math.floor(Math.random() * size);
const storedId = (index: number) => `b${String(index).padStart(9, '0')}`;

async function benchSize(url: string, size: number): Promise<ComparisonRow[]> {
  const table = `bench_${randomBytes(4).toString('hex')}`;
  // One connection for everything: the store and raw pg take turns on the same session.
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  const store = new PostgresTokenStore({ pool, schema: SCHEMA, table });
  const sql = buildSql(SCHEMA, table);
  const qualified = store.qualifiedTable;
  try {
    await store.migrate();
    // Bulk load on the server: one INSERT ... SELECT over generate_series.
    await pool.query(
      `INSERT INTO ${qualified} (id, user_name, client_id, client_secret, refresh_token, access_token, grant_token, expiry_time, redirect_url, api_domain)
       SELECT 'b' || lpad(g::text, 9, '0'), 'user' || g || '@zylker.com:6000123', '1000.CLIENT', 'client-secret-' || g,
              '1000.refresh.' || md5(g::text), '1000.access.' || md5(g::text), NULL, 1764000000000 + g,
              'https://app.example.com/callback', 'https://www.zohoapis.eu'
       FROM generate_series(0, $1::int - 1) AS g`,
      [size],
    );
    // VACUUM too, so autovacuum does not start on the fresh rows in the middle of the measurements.
    await pool.query(`VACUUM ANALYZE ${qualified}`);

    const [findStore, findSame, findPlain] = await interleavedMedians(
      [
        () => store.findToken(new OAuthToken({ userSignature: new UserSignature(userName(randomUser(size))) })),
        () => pool.query({ name: sql.findBy.userName.name, text: sql.findBy.userName.text, values: [userName(randomUser(size))] }),
        () =>
          pool.query({ name: 'floor_find', text: `SELECT * FROM ${qualified} WHERE user_name = $1`, values: [userName(randomUser(size))] }),
      ],
      OPERATIONS,
      WARMUP,
    );

    // A known user's refreshed access token, by user name.
    const update = (iteration: number) =>
      new OAuthToken({
        userSignature: new UserSignature(userName(randomUser(size))),
        accessToken: `1000.access.new.${iteration}`,
        expiryTime: Date.now(),
      });
    const byUserName = sql.save({ hasId: false, field: 'userName', mergeOn: 'user_name' });
    const [saveStore, saveSame, savePlain] = await interleavedMedians(
      [
        (iteration) => store.saveToken(update(iteration)),
        (iteration) => {
          const token = update(iteration);
          const values = [...tokenToValues(token), 'unusedid00', token.userName];
          return pool.query({ name: byUserName.name, text: byUserName.text, values });
        },
        (iteration) => {
          const token = update(iteration);
          const values = [token.userName, token.accessToken, token.expiryTime];
          return pool.query({
            name: 'floor_save',
            text: `UPDATE ${qualified} SET access_token = $2, expiry_time = $3 WHERE user_name = $1`,
            values,
          });
        },
      ],
      OPERATIONS,
      WARMUP,
    );

    // TokenManager's refresh: { id, accessToken, expiryTime, apiDomain }.
    const refresh = (iteration: number) =>
      new OAuthToken({
        id: storedId(randomUser(size)),
        accessToken: `1000.access.refreshed.${iteration}`,
        expiryTime: Date.now(),
        apiDomain: 'https://www.zohoapis.eu',
      });
    const byId = sql.updateById; // what the store sends first for a token with an id
    const [refreshStore, refreshSame, refreshPlain] = await interleavedMedians(
      [
        (iteration) => store.saveToken(refresh(iteration)),
        (iteration) => {
          const token = refresh(iteration);
          return pool.query({ name: byId.name, text: byId.text, values: tokenToValues(token) });
        },
        (iteration) => {
          const token = refresh(iteration);
          return pool.query({
            name: 'floor_refresh',
            text: `UPDATE ${qualified} SET access_token = $2, expiry_time = $3, api_domain = $4 WHERE id = $1`,
            values: [token.id, token.accessToken, token.expiryTime, token.apiDomain],
          });
        },
      ],
      OPERATIONS,
      WARMUP,
    );

    // A new user's first tokens: an insert. Each variant inserts users of its own.
    const fresh = (variant: string, iteration: number) =>
      new OAuthToken({
        userSignature: new UserSignature(`new-${variant}-${iteration}@zylker.com:6000123`),
        clientId: '1000.CLIENT',
        clientSecret: 'client-secret',
        refreshToken: `1000.refresh.${variant}.${iteration}`,
        accessToken: `1000.access.${variant}.${iteration}`,
        expiryTime: Date.now(),
      });
    const [insertStore, insertSame, insertPlain] = await interleavedMedians(
      [
        (iteration) => store.saveToken(fresh('store', iteration)),
        (iteration) => {
          const token = fresh('same', iteration);
          const values = [...tokenToValues(token), newTokenId(), token.userName];
          return pool.query({ name: byUserName.name, text: byUserName.text, values });
        },
        (iteration) => {
          const token = fresh('plain', iteration);
          return pool.query({
            name: 'floor_insert',
            text: `INSERT INTO ${qualified} (${TOKEN_COLUMNS.join(', ')}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
            values: [newTokenId(), ...tokenToValues(token).slice(1)],
          });
        },
      ],
      OPERATIONS,
      WARMUP,
    );
    return [
      { operation: 'findToken (user name)', tokens: size, store: findStore, rawSame: findSame, rawPlain: findPlain },
      { operation: 'saveToken (update by user name)', tokens: size, store: saveStore, rawSame: saveSame, rawPlain: savePlain },
      { operation: 'saveToken (refresh by id)', tokens: size, store: refreshStore, rawSame: refreshSame, rawPlain: refreshPlain },
      { operation: 'saveToken (insert)', tokens: size, store: insertStore, rawSame: insertSame, rawPlain: insertPlain },
    ];
  } finally {
    await pool.query(`DROP TABLE IF EXISTS ${qualified}`).catch(() => {});
    await store.close();
    await pool.end();
  }
}

async function main(): Promise<void> {
  const server = await ensurePostgres();
  try {
    const rows: ComparisonRow[] = [];
    for (const size of SIZES) rows.push(...(await benchSize(server.url, size)));
    printComparison(
      `PostgresTokenStore vs raw pg, one connection, median of ${OPERATIONS} operations each after ${WARMUP} warm-up, variants interleaved (µs)`,
      'raw pg, same statement',
      'raw pg, floor',
      rows,
      'same statement: the prepared SELECT / save statement the store sends, sent by hand in autocommit (the store' +
        ' sends its save inside BEGIN ... COMMIT, in the same round trip). plain: the prepared hand-written statement,' +
        ' the floor: SELECT * ... WHERE user_name = $1; UPDATE ... SET access_token, expiry_time WHERE user_name = $1;' +
        ' UPDATE ... SET access_token, expiry_time, api_domain WHERE id = $1; INSERT of all columns.',
    );
  } finally {
    await server.stop();
  }
}

await main();
