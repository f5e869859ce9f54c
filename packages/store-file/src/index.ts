export { formatTokenFile, formatTokenLine, HEADER_LINE, parseTokenFile } from './csv.js';
export { DEFAULT_PATH, FileTokenStore, type FileTokenStoreOptions } from './file-store.js';
