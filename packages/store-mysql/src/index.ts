export { MySQLTokenStore, type MySQLTokenStoreOptions } from './mysql-store.js';
export { COLUMN_TYPES, createTableSql, DEFAULT_TABLE, DEFAULT_URL, parseTableName, STORE_NAME, type TableName } from './sql.js';
