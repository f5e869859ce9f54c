import { MySQLTokenStore } from '@crm/store-mysql';
import { ensureMySQL } from '@crm/test-services/mysql';
import KeyvMysql from '@keyv/mysql';
import Keyv from 'keyv';
import { type Connection, createConnection, createPool, type RowDataPacket } from 'mysql2/promise';
import type { Backend, Contender, Settings } from '../backend.js';
import { keyvContender, keyvRawPairs } from '../keyv.js';
import {
  COLUMNS,
  newTokenRow,
  newUserName,
  ourContender,
  pickIndex,
  refreshed,
  type TokenRow,
  tokenId,
  tokenRows,
  userName,
} from '../tokens.js';
import { DBStore, zohoContender } from '../zoho.js';

const BATCH = 2_000;
/** Zoho's table has no index on user_name: past this many tokens its lookups by user name scan the table. */
const LARGE = 10_000;
const ZOHO_SCANS_WHEN_LARGE = 200;

/** Zoho DBStore's table, exactly as their README creates it. */
const zohoTableSql = (table: string) =>
  `CREATE TABLE \`${table}\` (id varchar(10) NOT NULL, user_name varchar(255), client_id varchar(255), client_secret varchar(255), refresh_token varchar(255), access_token varchar(255), grant_token varchar(255), expiry_time varchar(20), redirect_url varchar(255), api_domain varchar(255), primary key (id))`;

export async function bulkInsert(connection: Connection, table: string, size: number): Promise<void> {
  for (let from = 0; from < size; from += BATCH) {
    const rows = tokenRows(from, Math.min(size, from + BATCH)).map((row) => COLUMNS.map((column) => row[column]));
    await connection.query(`INSERT INTO \`${table}\` (${COLUMNS.join(', ')}) VALUES ?`, [rows]);
  }
}

export async function openMySQL(settings: Settings): Promise<Backend> {
  const service = await ensureMySQL();
  let admin: Connection;
  try {
    admin = await createConnection({ uri: service.url });
  } catch (error) {
    await service.stop();
    throw error;
  }
  const [versionRows] = await admin.query<RowDataPacket[]>('SELECT VERSION() AS version');
  const url = new URL(service.url);
  return {
    name: 'MySQL',
    version: `MySQL/MariaDB ${versionRows[0]?.version ?? '?'}`,
    async load(size) {
      const table = `bench_tokens_${settings.tag}_${size}`;
      const keyvTable = `bench_keyv_${settings.tag}_${size}`;
      const zohoTable = `bench_zoho_${settings.tag}_${size}`;
      const pool = createPool({ uri: service.url });
      const store = new MySQLTokenStore({ pool, table });
      await store.migrate();
      await bulkInsert(admin, table, size);
      await admin.query(zohoTableSql(zohoTable));
      await bulkInsert(admin, zohoTable, size);

      const keyvStore = new KeyvMysql({ uri: service.url, table: keyvTable });
      const keyv = new Keyv<TokenRow>({ store: keyvStore, namespace: `bench${settings.tag}` });
      await keyv.get('absent'); // the adapter creates its table on connect
      // @keyv/mysql writes one row per statement; the load writes Keyv's rows as multi-row INSERTs instead.
      for (let from = 0; from < size; from += BATCH) {
        const pairs = await keyvRawPairs(keyv, tokenRows(from, Math.min(size, from + BATCH)));
        await admin.query(`INSERT INTO \`${keyvTable}\` (id, value) VALUES ?`, [pairs]);
      }
      await admin.query(`ANALYZE TABLE \`${table}\`, \`${keyvTable}\`, \`${zohoTable}\``);

      // trace: false, as the store's pool: mysql2's promise API otherwise captures a stack trace per query.
      const connection = await createConnection({ uri: service.url, trace: false });
      const first = async (sql: string, values: Array<string | null>) => {
        const [result] = await connection.execute(sql, values);
        return Array.isArray(result) ? result[0] : result;
      };
      const floor: Contender = {
        kind: 'floor',
        label: 'mysql2, prepared statements (execute) on the same table',
        operations: {
          'findToken (user name)': (round) => first(`SELECT * FROM \`${table}\` WHERE user_name = ?`, [userName(pickIndex(round, size))]),
          findTokenById: (round) => first(`SELECT * FROM \`${table}\` WHERE id = ?`, [tokenId(pickIndex(round, size))]),
          'saveToken (update)': (round) => {
            const { accessToken, expiryTime } = refreshed(round, 'floor');
            return first(`UPDATE \`${table}\` SET access_token = ?, expiry_time = ? WHERE user_name = ?`, [
              accessToken,
              String(expiryTime),
              userName(pickIndex(round, size)),
            ]);
          },
          'saveToken (insert)': (round) => {
            const row = { ...newTokenRow(newUserName('floor', settings.tag, round), round), id: `f${settings.tag}${round}` };
            return first(
              `INSERT INTO \`${table}\` (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')})`,
              COLUMNS.map((column) => row[column]),
            );
          },
        },
      };
      const ours = ourContender('MySQLTokenStore', store, size, settings.tag);
      const zoho = new DBStore(
        url.hostname,
        url.pathname.slice(1),
        zohoTable,
        decodeURIComponent(url.username) || 'root',
        decodeURIComponent(url.password),
        url.port || '3306',
      );
      return {
        contenders: [
          ours,
          floor,
          keyvContender(keyv, '@keyv/mysql, own table', size, settings.tag),
          zohoContender(zoho, "Zoho's DBStore (new connection per call, no index on user_name)", size, settings.tag, (operation, tokens) =>
            operation !== 'findTokenById' && tokens > LARGE ? ZOHO_SCANS_WHEN_LARGE : undefined,
          ),
        ],
        async close() {
          await keyv.disconnect();
          await connection.end();
          await store.close();
          await pool.end();
          await admin.query(`DROP TABLE IF EXISTS \`${table}\`, \`${keyvTable}\`, \`${zohoTable}\``);
        },
      };
    },
    async close() {
      await admin.end();
      await service.stop();
    },
  };
}
