export type { PostgresPoolOptions, PostgresTokenStoreOptions, PostgresUrlOptions } from './postgres-store.js';
export { PostgresTokenStore } from './postgres-store.js';
export { SCHEMA_NAME_PATTERN, STORE_NAME, TABLE_NAME_PATTERN } from './sql.js';
