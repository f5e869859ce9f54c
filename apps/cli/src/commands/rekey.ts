/**
 * `crm-tokens rekey [--store URL]`: re-seals every token of an encrypted store under the active key, with keys
 * from CRM_TOKEN_KEYS (`id1:base64,id2:base64`) and CRM_TOKEN_ACTIVE_KEY. Prints the sealed values per key id
 * before and after; a progress bar on a terminal, plain lines otherwise. Only ids, key ids and counts are
 * printed: never a key or a token value.
 */
import { TokenStoreError } from '@crm/core';
import type { EncryptionOptions, KeyCounts } from '@crm/encryption';
import { rekey } from '@crm/encryption';
import type { Command } from 'commander';
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
  const keys: Record<string, string> = {};
  for (const entry of list.split(',')) {
    const colon = entry.indexOf(':');
    const id = entry.slice(0, colon).trim();
    if (colon < 1) throw usage(`${KEYS_ENV} holds an entry without an id: give the keys as id1:base64,id2:base64`);
    if (id in keys) throw usage(`${KEYS_ENV} names key ${id} twice`);
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

async function runRekey(flags: { store: string }): Promise<number> {
  const encryption = keysFromEnv();
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
Values stored before encryption (plaintext) are sealed too. Each token is re-sealed under the store's lock
refresh:<id>, so refreshes by TokenManager in other processes wait for it. Prints the number of sealed values
per key id before and after; a progress bar on a terminal, one line per token otherwise; ids only, no secret.
Exit code 0: every token is on the active key; 1: a token could not be opened (listed by id); 2: a missing or
bad key; 3: the store could not be reached.
${STORE_URL_HELP}`,
    )
    .action(async (flags: { store: string }) => {
      process.exit(await runRekey(flags));
    });
}
