export { type EmulatorCounts, LIMITS, THROTTLED_DESCRIPTION } from './accounts.js';
export { type AccountsEmulator, type AccountsEmulatorOptions, startAccountsEmulator } from './server.js';
