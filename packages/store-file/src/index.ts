export { decodeTokenFile, formatTokenFile, formatTokenLine, HEADER_LINE, parseTokenFile, STORE_NAME } from './csv.js';
export { DEFAULT_FILENAME, FileTokenStore, type FileTokenStoreOptions } from './file-store.js';
