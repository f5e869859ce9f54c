export { DEFAULT_PREFIX, escapeGlob, PREFIX_PATTERN } from './keys.js';
export {
  DEFAULT_OPERATION_TIMEOUT_MS,
  type RedisClient,
  RedisTokenStore,
  type RedisTokenStoreOptions,
  resilientRedisOptions,
} from './redis-store.js';
