import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConformanceOptions } from '@crm/store-conformance';
import { SQLiteTokenStore } from '../src/index.js';

/** Each store gets its own folder and file, removed with everything SQLite put next to it (-wal, -shm). */
export function createConformanceOptions(): ConformanceOptions<SQLiteTokenStore> {
  const filenames = new WeakMap<SQLiteTokenStore, string>();
  const open = (filename: string) => {
    const store = new SQLiteTokenStore({ filename });
    filenames.set(store, filename);
    return store;
  };
  const filenameOf = (store: SQLiteTokenStore) => {
    const filename = filenames.get(store);
    if (filename === undefined) throw new Error('this store was not made by createConformanceOptions');
    return filename;
  };
  return {
    create: () => open(join(mkdtempSync(join(tmpdir(), 'crm-sqlite-')), 'tokens.db')),
    reopen: (store) => open(filenameOf(store)),
    destroy: (store) => rmSync(join(filenameOf(store), '..'), { recursive: true, force: true }),
  };
}
