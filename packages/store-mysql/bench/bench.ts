/**
 * findToken by user name, saveToken (an update by user name) and saveToken (a refresh by id, as TokenManager
 * saves it) with 1,000 and 100,000 stored tokens, the contenders of each operation interleaved in rounds so a
 * busy machine slows them alike:
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
/** Each contender runs a tenth of its operations per round, in turn with the others. */
const ROUNDS = 10;
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

/** Multi-row INSERTs of 2,000 rows: 100,000 rows load in seconds. Returns the ids, in user order. */
async function bulkLoad(pool: Pool, table: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let start = 0; start < count; start += 2000) {
    const rows = [];
    for (let n = start; n < Math.min(count, start + 2000); n++) {
      ids.push(randomBytes(5).toString('hex'));
      rows.push([
        ids[n]!,
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
  return ids;
}

interface Contender {
  implementation: string;
  ops: number;
  call: (n: number) => Promise<unknown>;
}

/** Medians (µs) of each contender's timed calls, after a warm-up, in ROUNDS interleaved rounds. */
async function interleaved(contenders: Contender[]): Promise<number[]> {
  for (const contender of contenders) {
    for (let n = 0; n < Math.min(WARMUP, contender.ops / 10); n++) await contender.call(n);
  }
  const times: number[][] = contenders.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [index, contender] of contenders.entries()) {
      const perRound = Math.ceil(contender.ops / ROUNDS);
      for (let k = 0; k < perRound; k++) {
        const n = WARMUP + round * perRound + k;
        const started = process.hrtime.bigint();
        await contender.call(n);
        times[index]!.push(Number(process.hrtime.bigint() - started) / 1000);
      }
    }
  }
  return times.map((list) => {
    list.sort((a, b) => a - b);
    return list[Math.floor(list.length / 2)]!;
  });
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
      const ids = await bulkLoad(pool, ownTable, size);
      await bulkLoad(pool, zohoTable, size);
      await pool.query(`ANALYZE TABLE ${ownTable}, ${zohoTable}`);
      const onZoho = new MySQLTokenStore({ pool, table: zohoTable });
      const zoho: ZohoDBStore = new DBStore(url.hostname, database, zohoTable, url.username || 'root', url.password, url.port || '3306');
      const pick = (n: number) => userName((n * 7919) % size);
      const zohoOps = size > 10000 ? ZOHO_OPS_LARGE : OPS;
      const measure = async (operation: string, contenders: Contender[]) => {
        const medians = await interleaved(contenders);
        for (const [index, { implementation, ops }] of contenders.entries()) {
          results.push({ rows: size, operation, implementation, ops, medianUs: medians[index]!, baselineUs: 0 });
        }
      };

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

      await measure('findToken by user name', [
        {
          implementation: 'raw mysql2 (one SELECT)',
          ops: OPS,
          call: (n) => pool.execute(`SELECT ${COLUMNS} FROM \`${ownTable}\` WHERE user_name = ?`, [pick(n)]),
        },
        { implementation: 'MySQLTokenStore', ops: OPS, call: find(store) },
        { implementation: 'MySQLTokenStore, Zoho table unmigrated', ops: zohoOps, call: find(onZoho) },
        { implementation: 'Zoho DBStore', ops: zohoOps, call: zohoFind },
      ]);
      await measure('saveToken (update)', [
        {
          implementation: 'raw mysql2 (one UPDATE)',
          ops: OPS,
          call: (n) =>
            pool.execute(`UPDATE \`${ownTable}\` SET access_token = ?, expiry_time = ? WHERE user_name = ?`, [
              `1000.raw-${n}`,
              String(n),
              pick(n),
            ]),
        },
        { implementation: 'MySQLTokenStore', ops: OPS, call: save(store) },
        { implementation: 'MySQLTokenStore, Zoho table unmigrated', ops: zohoOps, call: save(onZoho) },
        { implementation: 'Zoho DBStore', ops: zohoOps, call: zohoSave },
      ]);
      // TokenManager's save after a refresh: {id, accessToken, expiryTime, apiDomain}.
      const pickId = (n: number) => ids[(n * 7919) % size]!;
      await measure('saveToken (refresh by id)', [
        {
          implementation: 'raw mysql2 (one UPDATE)',
          ops: OPS,
          call: (n) =>
            pool.execute(`UPDATE \`${ownTable}\` SET access_token = ?, expiry_time = ?, api_domain = ? WHERE id = ?`, [
              `1000.raw-${n}`,
              String(n),
              'https://www.zohoapis.com',
              pickId(n),
            ]),
        },
        {
          implementation: 'MySQLTokenStore',
          ops: OPS,
          call: (n) =>
            store.saveToken(
              new OAuthToken({ id: pickId(n), accessToken: `1000.id-${n}`, expiryTime: n, apiDomain: 'https://www.zohoapis.com' }),
            ),
        },
      ]);
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
    `MySQL token store benchmark (server ${service.url.replace(/\/\/[^@]*@/, '//')}, median over the op count in ${ROUNDS} interleaved rounds, after a warm-up of a tenth of that, at most ${WARMUP})\n`,
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
