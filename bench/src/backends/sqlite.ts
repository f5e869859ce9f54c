/**
 * SQLite: SQLiteTokenStore and the floor share one better-sqlite3 connection to one file (WAL); Keyv
 * (@keyv/sqlite, on the sqlite3 driver) has a file of its own in the same folder.
 */
import { join } from 'node:path';
import { SQLiteTokenStore } from '@crm/store-sqlite';
import KeyvSqlite from '@keyv/sqlite';
import Database from 'better-sqlite3';
import Keyv from 'keyv';
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

const BATCH = 10_000;

export async function openSqlite(settings: Settings): Promise<Backend> {
  const probe = new Database(':memory:');
  const version = (probe.prepare('SELECT sqlite_version() AS version').get() as { version: string }).version;
  probe.close();
  return {
    name: 'SQLite',
    version: `SQLite ${version} (better-sqlite3)`,
    async load(size) {
      const ourFile = join(settings.folder, `sqlite-${size}.db`);
      const keyvFile = join(settings.folder, `sqlite-keyv-${size}.db`);
      const database = new Database(ourFile);
      const table = `tokens_${settings.tag}`;
      const store = new SQLiteTokenStore({ database, table, journalMode: 'WAL' });
      await store.getTokens(); // creates the table and its indexes
      const insert = database.prepare(`INSERT INTO "${table}" (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')})`);
      database.transaction(() => {
        for (let from = 0; from < size; from += BATCH) {
          for (const row of tokenRows(from, Math.min(size, from + BATCH))) insert.run(...COLUMNS.map((column) => row[column]));
        }
      })();
      // No ANALYZE: the store never runs it, and with sqlite_stat4 present (better-sqlite3 builds SQLite with
      // STAT4) a statement prepared afterwards is prepared again on every call whose bound value may change its
      // plan, while one prepared before keeps its plan. The store prepares its statements before the load and
      // the floor after it, so statistics would slow whichever was prepared later, not measure the statements.

      const keyvStore = new KeyvSqlite({ uri: `sqlite://${keyvFile}`, table: `keyv_${settings.tag}` });
      const keyv = new Keyv<TokenRow>({ store: keyvStore, namespace: `bench${settings.tag}` });
      await keyv.get('absent'); // the adapter creates its table on connect
      // @keyv/sqlite writes one row per statement; the load writes Keyv's rows in one transaction instead.
      const keyvDatabase = new Database(keyvFile);
      const keyvInsert = keyvDatabase.prepare(`INSERT INTO keyv_${settings.tag} (key, value) VALUES (?, ?)`);
      for (let from = 0; from < size; from += BATCH) {
        const pairs = await keyvRawPairs(keyv, tokenRows(from, Math.min(size, from + BATCH)));
        keyvDatabase.transaction(() => {
          for (const [key, value] of pairs) keyvInsert.run(key, value);
        })();
      }
      keyvDatabase.close();

      const statements = {
        // The user-name index is partial (empty names are no user): SQLite uses it only when the WHERE
        // repeats its condition, so the cheapest statement by user name says `user_name <> ''` too.
        byUser: database.prepare(`SELECT * FROM "${table}" WHERE user_name = ? AND user_name <> ''`),
        byId: database.prepare(`SELECT * FROM "${table}" WHERE id = ?`),
        update: database.prepare(`UPDATE "${table}" SET access_token = ?, expiry_time = ? WHERE user_name = ? AND user_name <> ''`),
        insert,
      };
      const floor: Contender = {
        kind: 'floor',
        label: 'better-sqlite3, prepared statements on the same connection and table',
        operations: {
          'findToken (user name)': async (round) => statements.byUser.get(userName(pickIndex(round, size))),
          findTokenById: async (round) => statements.byId.get(tokenId(pickIndex(round, size))),
          'saveToken (update)': async (round) => {
            const { accessToken, expiryTime } = refreshed(round, 'floor');
            return statements.update.run(accessToken, String(expiryTime), userName(pickIndex(round, size)));
          },
          'saveToken (insert)': async (round) => {
            const row = { ...newTokenRow(newUserName('floor', settings.tag, round), round), id: `f${settings.tag}${round}` };
            return statements.insert.run(...COLUMNS.map((column) => row[column]));
          },
        },
      };
      const ours = ourContender('SQLiteTokenStore', store, size, settings.tag);
      return {
        contenders: [ours, floor, keyvContender(keyv, '@keyv/sqlite (sqlite3), own file', size, settings.tag)],
        async close() {
          await keyv.disconnect();
          await store.close();
          database.close();
        },
      };
    },
    async close() {},
  };
}
