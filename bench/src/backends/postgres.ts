import { PostgresTokenStore } from '@crm/store-postgres';
import { ensurePostgres } from '@crm/test-services/postgres';
import KeyvPostgres from '@keyv/postgres';
import Keyv from 'keyv';
import pg from 'pg';
import type { Backend, Contender, Settings } from '../backend.js';
import { keyvContender, keyvEntries } from '../keyv.js';
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

const BATCH = 10_000;

/** Loads `size` tokens into the store's table: 10 arrays of BATCH values, one INSERT ... SELECT FROM unnest per batch. */
export async function loadTokens(admin: pg.Client, table: string, size: number): Promise<void> {
  for (let from = 0; from < size; from += BATCH) {
    const rows = tokenRows(from, Math.min(size, from + BATCH));
    await admin.query(
      `INSERT INTO "${table}" (${COLUMNS.join(', ')}) SELECT * FROM unnest(${COLUMNS.map(
        (column, index) => `$${index + 1}::${column === 'expiry_time' ? 'bigint' : 'text'}[]`,
      ).join(', ')})`,
      COLUMNS.map((column) => rows.map((row) => row[column])),
    );
  }
}

export async function openPostgres(settings: Settings): Promise<Backend> {
  const service = await ensurePostgres();
  const admin = new pg.Client({ connectionString: service.url });
  try {
    await admin.connect();
  } catch (error) {
    await service.stop();
    throw error;
  }
  const version = (await admin.query<{ version: string }>("SELECT current_setting('server_version') AS version")).rows[0]?.version ?? '?';
  return {
    name: 'PostgreSQL',
    version: `PostgreSQL ${version}`,
    async load(size) {
      const table = `bench_tokens_${settings.tag}_${size}`;
      const keyvTable = `bench_keyv_${settings.tag}_${size}`;
      const pool = new pg.Pool({ connectionString: service.url });
      const store = new PostgresTokenStore({ pool, table });
      await store.migrate();
      await loadTokens(admin, table, size);
      await admin.query(`ANALYZE "${table}"`);

      const keyvStore = new KeyvPostgres({ uri: service.url, table: keyvTable });
      const keyv = new Keyv<TokenRow>({ store: keyvStore, namespace: `bench${settings.tag}` });
      await keyv.get('absent'); // the adapter creates its table on connect
      for (let from = 0; from < size; from += BATCH) await keyv.setMany(keyvEntries(tokenRows(from, Math.min(size, from + BATCH))));
      await admin.query(`ANALYZE "${keyvTable}"`);

      const client = new pg.Client({ connectionString: service.url });
      await client.connect();
      const first = async (name: string, text: string, values: unknown[]) => (await client.query({ name, text, values })).rows[0];
      const floor: Contender = {
        kind: 'floor',
        label: 'pg, named prepared statements on the same table',
        operations: {
          'findToken (user name)': (round) =>
            first('find_user', `SELECT * FROM "${table}" WHERE user_name = $1`, [userName(pickIndex(round, size))]),
          findTokenById: (round) => first('find_id', `SELECT * FROM "${table}" WHERE id = $1`, [tokenId(pickIndex(round, size))]),
          'saveToken (update)': (round) => {
            const { accessToken, expiryTime } = refreshed(round, 'floor');
            return first('update', `UPDATE "${table}" SET access_token = $1, expiry_time = $2 WHERE user_name = $3`, [
              accessToken,
              expiryTime,
              userName(pickIndex(round, size)),
            ]);
          },
          'saveToken (insert)': (round) => {
            const row = { ...newTokenRow(newUserName('floor', settings.tag, round), round), id: `f${settings.tag}${round}` };
            return first(
              'insert',
              `INSERT INTO "${table}" (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map((_, index) => `$${index + 1}`).join(', ')})`,
              COLUMNS.map((column) => row[column]),
            );
          },
        },
      };
      const ours = ourContender('PostgresTokenStore', store, size, settings.tag);
      return {
        contenders: [ours, floor, keyvContender(keyv, '@keyv/postgres, own table', size, settings.tag)],
        async close() {
          await keyv.disconnect();
          await client.end();
          await store.close();
          await pool.end();
          await admin.query(`DROP TABLE IF EXISTS "${table}", "${keyvTable}"`);
        },
      };
    },
    async close() {
      await admin.end();
      await service.stop();
    },
  };
}
