/**
 * findToken by user name and saveToken (update of a stored user) with 1,000 and 100,000 stored tokens,
 * next to raw pg sending (a) the very statement the store sends and (b) the plain hand-written query, all
 * on one pooled connection. Run with `pnpm bench`; it uses POSTGRES_URL, 127.0.0.1:5432 or a throwaway server.
 */
import { randomBytes } from 'node:crypto';
import { OAuthToken, UserSignature } from '@crm/core';
import { tokenToValues } from '@crm/core/store-kit';
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
        () => pool.query(`SELECT * FROM ${qualified} WHERE user_name = $1`, [userName(randomUser(size))]),
      ],
      OPERATIONS,
      WARMUP,
    );

    const update = (iteration: number) =>
      new OAuthToken({
        userSignature: new UserSignature(userName(randomUser(size))),
        accessToken: `1000.access.new.${iteration}`,
        expiryTime: Date.now(),
      });
    const saveStatement = sql.save('userName', 'user_name');
    const [saveStore, saveSame, savePlain] = await interleavedMedians(
      [
        (iteration) => store.saveToken(update(iteration)),
        (iteration) => {
          const token = update(iteration);
          const values = [...tokenToValues(token), 'unusedid00', token.userName];
          return pool.query({ name: saveStatement.name, text: saveStatement.text, values });
        },
        (iteration) => {
          const token = update(iteration);
          const values = [token.userName, token.accessToken, token.expiryTime];
          return pool.query(`UPDATE ${qualified} SET access_token = $2, expiry_time = $3 WHERE user_name = $1`, values);
        },
      ],
      OPERATIONS,
      WARMUP,
    );
    return [
      { operation: 'findToken (user name)', tokens: size, store: findStore, rawSame: findSame, rawPlain: findPlain },
      { operation: 'saveToken (update)', tokens: size, store: saveStore, rawSame: saveSame, rawPlain: savePlain },
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
      'raw pg, plain query',
      rows,
      'same statement: the prepared SELECT / CTE upsert the store sends, sent by hand. plain query: unprepared SELECT * ...' +
        ' WHERE user_name = $1, and UPDATE ... SET access_token, expiry_time WHERE user_name = $1.',
    );
  } finally {
    await server.stop();
  }
}

await main();
