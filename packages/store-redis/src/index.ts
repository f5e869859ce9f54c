export { type RedisClient, RedisTokenStore, type RedisTokenStoreOptions, resilientRedisOptions, STORE_NAME } from './redis-store.js';
export { DEFAULT_PREFIX, escapeGlob, PREFIX_PATTERN } from './scripts.js';
