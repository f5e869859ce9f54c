/**
 * findToken by user name and saveToken (an update) with 1,000 and 100,000 stored tokens:
 * - MySQLTokenStore on its own table, through a one-connection pool;
 * - the raw mysql2 driver running the single equivalent query on that same connection;
 * - Zoho's DBStore (@zohocrm/typescript-sdk-8.0, `mysql` driver, a new connection per call) on its documented table;
 * - MySQLTokenStore on that same unmigrated Zoho table (no index on user_name), to show what migrate() buys.
 * Run: pnpm bench (uses the server ensureMySQL() finds or starts).
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { OAuthToken, UserSignature } from '@crm/core';
import { ensureMySQL } from '@crm/test-services/mysql';
import { createPool, type Pool } from 'mysql2/promise';
import { MySQLTokenStore } from '../src/index.js';

const SIZES = [1000, 100000];
const OPS = 1000;
const WARMUP = 100;
/** Zoho's lookups scan the whole table at 100,000 rows: fewer operations there. */
const ZOHO_OPS_LARGE = 200;
const COLUMNS = 'id, user_name, client_id, client_secret, refresh_token, access_token, grant_token, expiry_time, redirect_url, api_domain';
const ZOHO_DDL = (table: string) =>
  `CREATE TABLE ${table} (id varchar(10) NOT NULL, user_name varchar(255), client_id varchar(255), client_secret varchar(255), refresh_token varchar(255), access_token varchar(255), grant_token varchar(255), expiry_time varchar(20), redirect_url varchar(255), api_domain varchar(255), primary key (id))`;

interface ZohoDBStore {
  findToken(token: unknown): Promise<unknown>;
  saveToken(token: unknown): Promise<unknown>;
}

const require = createRequire(import.meta.url);
const sdk = '@zohocrm/typescript-sdk-8.0/dist';
const { DBStore } = require(`${sdk}/models/authenticator/store/db_store.js`);
const { OAuthToken: ZohoToken } = require(`${sdk}/models/authenticator/oauth_token.js`);
const { UserSignature: ZohoUser } = require(`${sdk}/routes/user_signature.js`);

const userName = (n: number) => `user-${n}@zylker.com:6000${n % 97}`;

/** Multi-row INSERTs of 2,000 rows: 100,000 rows load in seconds. */
async function bulkLoad(pool: Pool, table: string, count: number): Promise<void> {
  for (let start = 0; start < count; start += 2000) {
    const rows = [];
    for (let n = start; n < Math.min(count, start + 2000); n++) {
      rows.push([
        randomBytes(5).toString('hex'),
        userName(n),
        '1000.CLIENTID',
        'client-secret',
        `1000.${randomBytes(16).toString('hex')}.${randomBytes(16).toString('hex')}`,
        `1000.${randomBytes(16).toString('hex')}.${randomBytes(16).toString('hex')}`,
        null,
        String(Date.now() + 3600000),
        'https://example.test/callback',
        'https://www.zohoapis.com',
      ]);
    }
    await pool.query(`INSERT INTO ${table} (${COLUMNS}) VALUES ?`, [rows]);
  }
}

/** Median of `ops` timed calls after a warm-up, in microseconds. */
async function median(ops: number, call: (n: number) => Promise<unknown>): Promise<number> {
  const warmup = Math.min(WARMUP, ops / 10);
  for (let n = 0; n < warmup; n++) await call(n);
  const times: number[] = [];
  for (let n = 0; n < ops; n++) {
    const started = process.hrtime.bigint();
    await call(n + warmup);
    times.push(Number(process.hrtime.bigint() - started) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

interface Row {
  rows: number;
  operation: string;
  implementation: string;
  ops: number;
  medianUs: number;
  baselineUs: number;
}

async function main(): Promise<void> {
  const service = await ensureMySQL();
  const url = new URL(service.url);
  const database = url.pathname.slice(1);
  // connectionLimit 1: the store and the raw driver use literally the same connection.
  const pool = createPool({ uri: service.url, connectionLimit: 1 });
  const results: Row[] = [];
  const tables: string[] = [];
  try {
    for (const size of SIZES) {
      const ownTable = `crm_bench_${randomBytes(4).toString('hex')}`;
      const zohoTable = `crm_bench_zoho_${randomBytes(4).toString('hex')}`;
      tables.push(ownTable, zohoTable);
      const store = new MySQLTokenStore({ pool, table: ownTable });
      await store.getTokens(); // creates the table
      await pool.query(ZOHO_DDL(zohoTable));
      await bulkLoad(pool, ownTable, size);
      await bulkLoad(pool, zohoTable, size);
      await pool.query(`ANALYZE TABLE ${ownTable}, ${zohoTable}`);
      const onZoho = new MySQLTokenStore({ pool, table: zohoTable });
      const zoho: ZohoDBStore = new DBStore(url.hostname, database, zohoTable, url.username || 'root', url.password, url.port || '3306');
      const pick = (n: number) => userName((n * 7919) % size);
      const zohoOps = size > 10000 ? ZOHO_OPS_LARGE : OPS;
      const add = (operation: string, implementation: string, ops: number, medianUs: number) =>
        results.push({ rows: size, operation, implementation, ops, medianUs, baselineUs: 0 });

      const find = (target: MySQLTokenStore) => (n: number) =>
        target.findToken(new OAuthToken({ userSignature: new UserSignature(pick(n)) }));
      const save = (target: MySQLTokenStore) => (n: number) =>
        target.saveToken(new OAuthToken({ userSignature: new UserSignature(pick(n)), accessToken: `1000.new-${n}`, expiryTime: n }));
      const zohoFind = (n: number) => zoho.findToken(new ZohoToken(null, null, null, null, null, null, null, new ZohoUser(pick(n))));
      const zohoSave = (n: number) => {
        const token = new ZohoToken(null, null, null, null, null, null, `1000.new-${n}`, new ZohoUser(pick(n)));
        token.setExpiresIn(String(n));
        return zoho.saveToken(token);
      };

      add(
        'findToken by user name',
        'raw mysql2 (one SELECT)',
        OPS,
        await median(OPS, (n) => pool.execute(`SELECT ${COLUMNS} FROM \`${ownTable}\` WHERE user_name = ?`, [pick(n)])),
      );
      add('findToken by user name', 'MySQLTokenStore', OPS, await median(OPS, find(store)));
      add('findToken by user name', 'MySQLTokenStore, Zoho table unmigrated', zohoOps, await median(zohoOps, find(onZoho)));
      add('findToken by user name', 'Zoho DBStore', zohoOps, await median(zohoOps, zohoFind));
      add(
        'saveToken (update)',
        'raw mysql2 (one UPDATE)',
        OPS,
        await median(OPS, (n) =>
          pool.execute(`UPDATE \`${ownTable}\` SET access_token = ?, expiry_time = ? WHERE user_name = ?`, [
            `1000.raw-${n}`,
            String(n),
            pick(n),
          ]),
        ),
      );
      add('saveToken (update)', 'MySQLTokenStore', OPS, await median(OPS, save(store)));
      add('saveToken (update)', 'MySQLTokenStore, Zoho table unmigrated', zohoOps, await median(zohoOps, save(onZoho)));
      add('saveToken (update)', 'Zoho DBStore', zohoOps, await median(zohoOps, zohoSave));
      await store.close();
      await onZoho.close();
    }
  } finally {
    for (const table of tables) await pool.query(`DROP TABLE IF EXISTS \`${table}\``);
    await pool.end();
    await service.stop();
  }

  for (const row of results) {
    const raw = results.find(
      (other) => other.rows === row.rows && other.operation === row.operation && other.implementation.startsWith('raw'),
    );
    row.baselineUs = raw?.medianUs ?? row.medianUs;
  }
  console.log(
    `MySQL token store benchmark (server ${service.url.replace(/\/\/[^@]*@/, '//')}, median over the op count after a warm-up of a tenth of that, at most ${WARMUP})\n`,
  );
  console.log('| rows | operation | implementation | ops | median µs | × raw driver |');
  console.log('| ---: | --- | --- | ---: | ---: | ---: |');
  for (const row of results) {
    console.log(
      `| ${row.rows.toLocaleString('en-US')} | ${row.operation} | ${row.implementation} | ${row.ops} | ${row.medianUs.toFixed(0)} | ${(row.medianUs / row.baselineUs).toFixed(2)} |`,
    );
  }
}

await main();
