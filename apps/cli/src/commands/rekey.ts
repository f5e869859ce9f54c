/**
 * `crm-tokens rekey [--store URL]`: re-seals every token of an encrypted store under the active key, with keys
 * from CRM_TOKEN_KEYS (`id1:base64,id2:base64`) and CRM_TOKEN_ACTIVE_KEY. Prints the sealed values per key id
 * before and after; a progress bar on a terminal, plain lines otherwise. Only ids, key ids and counts are
 * printed: never a key or a token value.
 */
import { MemoryTokenStore, TokenStoreError } from '@crm/core';
import type { EncryptionOptions, KeyCounts } from '@crm/encryption';
import { encryptedStore, rekey } from '@crm/encryption';
import type { Command } from 'commander';
import { parseStoreUrl, type StoreKind } from '../conformance-url-options.js';
import { EXIT } from '../output.js';
import { startProgress } from '../progress.js';
import { STORE_URL_HELP, storeOption, withStore } from '../store.js';

export const KEYS_ENV = 'CRM_TOKEN_KEYS';
export const ACTIVE_KEY_ENV = 'CRM_TOKEN_ACTIVE_KEY';

const usage = (message: string) => TokenStoreError.invalidArgument({ store: 'crm-tokens', operation: 'open' }, message);

/** The keys from the environment. Errors name the variable and the key id, never a key. */
export function keysFromEnv(env: NodeJS.ProcessEnv = process.env): EncryptionOptions {
  const list = env[KEYS_ENV]?.trim();
  if (!list) throw usage(`${KEYS_ENV} is not set: give the keys as id1:base64,id2:base64`);
  // No prototype: an id such as `toString` or `__proto__` is an entry like any other (and the keyring refuses
  // the reserved ones by name).
  const keys: Record<string, string> = Object.create(null);
  for (const entry of list.split(',')) {
    const colon = entry.indexOf(':');
    const id = entry.slice(0, colon).trim();
    if (colon < 1) throw usage(`${KEYS_ENV} holds an entry without an id: give the keys as id1:base64,id2:base64`);
    if (Object.hasOwn(keys, id)) throw usage(`${KEYS_ENV} names key ${id} twice`);
    keys[id] = entry.slice(colon + 1).trim();
  }
  const activeKeyId = env[ACTIVE_KEY_ENV]?.trim();
  if (!activeKeyId) throw usage(`${ACTIVE_KEY_ENV} is not set: name the key new values are sealed with`);
  return { keys, activeKeyId };
}

const shownCounts = (counts: KeyCounts) =>
  Object.keys(counts).length === 0
    ? 'none'
    : Object.entries(counts)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([keyId, count]) => `${keyId} ${count}`)
        .join(', ');

/**
 * What to run once plaintext values were sealed: the rows were rewritten, but the storage may still hold the
 * old bytes (freed pages, dead row versions, append-only files), and backups taken before hold them too.
 */
const RECLAIM: Record<StoreKind, string | null> = {
  sqlite: 'run VACUUM on the SQLite file (sqlite3 FILE "VACUUM;") to drop the freed pages that still hold them',
  postgres: 'run VACUUM FULL on the table to drop the dead row versions that still hold them',
  mysql: 'run OPTIMIZE TABLE on the table to rebuild it without the old row images (binary logs keep them until purged)',
  redis: 'run BGREWRITEAOF and let Redis write a new RDB snapshot: the append-only file and old snapshots still hold them',
  file: "the token file was replaced whole; the old file's disk blocks are freed, not erased",
  memory: null,
};

export function plaintextReminder(kind: StoreKind): string | null {
  const step = RECLAIM[kind];
  if (step === null) return null;
  return `plaintext values were sealed, but the storage may still hold the old bytes: ${step}. Backups taken before this run still hold them in plaintext.`;
}

async function runRekey(flags: { store: string }): Promise<number> {
  const encryption = keysFromEnv();
  // The keys are checked (format, reserved ids, one key per id) before any store is opened or anything printed.
  encryptedStore(new MemoryTokenStore(), encryption);
  return withStore(flags.store, async ({ store, shownUrl }) => {
    console.log(`rekey ${shownUrl} to key ${encryption.activeKeyId}`);
    let progress: ReturnType<typeof startProgress> | null = null;
    const report = await rekey(store, {
      ...encryption,
      onProgress: ({ total, tokenId, outcome }) => {
        progress ??= startProgress('rekey', total);
        progress.step(`${tokenId} ${outcome === 'current' ? 'already current' : outcome === 'resealed' ? 're-sealed' : outcome}`);
      },
    }).finally(() => (progress as ReturnType<typeof startProgress> | null)?.stop());
    console.log(`before: sealed values per key: ${shownCounts(report.before)}`);
    for (const failure of report.failed) console.log(`failed: token ${failure.tokenId}: ${failure.reason}`);
    console.log(
      `${report.resealed} re-sealed, ${report.current} already on ${report.activeKeyId}` +
        (report.gone > 0 ? `, ${report.gone} deleted meanwhile` : '') +
        (report.failed.length > 0 ? `, ${report.failed.length} failed` : ''),
    );
    console.log(`after: sealed values per key: ${shownCounts(report.after)}`);
    const plaintextSealed = (report.before.plaintext ?? 0) > (report.after.plaintext ?? 0);
    const reminder = plaintextSealed ? plaintextReminder(parseStoreUrl(flags.store).kind) : null;
    if (reminder !== null) console.log(reminder);
    return report.failed.length > 0 ? EXIT.problem : EXIT.ok;
  });
}

export function registerRekey(program: Command): void {
  program
    .command('rekey')
    .description('Re-seal every token of an encrypted store under the active key (key rotation); running it again changes nothing')
    .addOption(storeOption())
    .addHelpText(
      'after',
      `
Keys come from the environment, never from the command line:
  ${KEYS_ENV}        every key the store may hold values under, as id1:base64,id2:base64 (32-byte keys)
  ${ACTIVE_KEY_ENV}  the id of the key to re-seal under
Values stored before encryption (plaintext) are sealed too; the storage may still hold their old bytes, so
when any were sealed it says what to run (SQLite VACUUM, PostgreSQL VACUUM FULL, Redis BGREWRITEAOF), and
backups taken before still hold them. Each token is re-sealed under the store's lock refresh:<id> (hashed for
long ids), so refreshes and revokes by TokenManager in other processes wait for it. Prints the number of sealed values
per key id before and after; a progress bar on a terminal, one line per token otherwise; ids only, no secret.
Exit code 0: every token is on the active key; 1: a token could not be opened (listed by id); 2: a missing or
bad key; 3: the store could not be reached.
${STORE_URL_HELP}`,
    )
    .action(async (flags: { store: string }) => {
      process.exit(await runRekey(flags));
    });
}
