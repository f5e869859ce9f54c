import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ConformanceOptions } from '@crm/store-conformance';
import Database from 'better-sqlite3';
import { SQLiteTokenStore } from '../src/index.js';

/** What `share` hands to another process: the file and the table, all it needs to open the same storage. */
interface SharedSQLite {
  filename: string;
  table: string;
}

/**
 * Each store gets its own folder and file, removed with everything SQLite put next to it (-wal, -shm).
 * Loadable outside jest: worker processes import this module and call `openShared`.
 */
export function createConformanceOptions(): ConformanceOptions<SQLiteTokenStore> {
  const filenames = new WeakMap<SQLiteTokenStore, string>();
  const open = ({ filename, table }: SharedSQLite) => {
    const store = new SQLiteTokenStore({ filename, table });
    filenames.set(store, filename);
    return store;
  };
  const describe = (store: SQLiteTokenStore): SharedSQLite => {
    const filename = filenames.get(store);
    if (filename === undefined) throw new Error('this store was not made by createConformanceOptions');
    return { filename, table: store.table };
  };
  return {
    create: () => open({ filename: join(mkdtempSync(join(tmpdir(), 'crm-sqlite-')), 'tokens.db'), table: 'oauthtoken' }),
    reopen: (store) => open(describe(store)),
    destroy: (store) => rmSync(dirname(describe(store).filename), { recursive: true, force: true }),
    share: (store) => describe(store),
    openShared: (description) => open(description as SharedSQLite),
    /**
     * A trigger that refuses every insert and update with a message quoting the row's secrets, as a
     * careless trigger or CHECK would: the store's error and its cause must not repeat them.
     */
    injectFault: (store) => {
      const { filename, table } = describe(store);
      // concat_ws skips NULLs, where || would turn the whole message NULL. An update also quotes the old row.
      const quoted = (row: string) => ['client_secret', 'refresh_token', 'access_token', 'grant_token'].map((column) => `${row}.${column}`);
      const message = (rows: string[]) => `concat_ws(' ', 'refused:', ${rows.flatMap(quoted).join(', ')})`;
      const database = new Database(filename);
      try {
        database.exec(
          `CREATE TRIGGER "${table}_fault_insert" BEFORE INSERT ON "${table}" BEGIN SELECT RAISE(ABORT, ${message(['NEW'])}); END;` +
            `CREATE TRIGGER "${table}_fault_update" BEFORE UPDATE ON "${table}" BEGIN SELECT RAISE(ABORT, ${message(['NEW', 'OLD'])}); END`,
        );
      } finally {
        database.close();
      }
    },
  };
}
