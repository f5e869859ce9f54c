export { STORE_NAME } from './sql.js';
export type { JournalMode, SQLiteTokenStoreOptions } from './sqlite-store.js';
export { JOURNAL_MODES, SQLiteTokenStore } from './sqlite-store.js';
