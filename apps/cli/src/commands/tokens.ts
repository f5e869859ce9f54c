/** `list`, `show ID`, `rm ID`, `purge`: looking after the tokens of one store. */
import { createInterface } from 'node:readline/promises';
import { type OAuthToken, refreshLockKey, supportsLocking, type TokenStore } from '@crm/core';
import type { Command } from 'commander';
import { CommandFailure, EXIT } from '../output.js';
import { STORE_URL_HELP, storeOption, withStore } from '../store.js';
import { shownToken, sortTokens, tokenDetails, tokenTable } from '../table.js';
import { cannotBeUsed } from '../usable.js';
import { differingFields } from './migrate.js';

interface ListOptions {
  store: string;
  expired?: boolean;
  accessExpired?: boolean;
  json?: boolean;
  reveal?: boolean;
}

const EXPIRED_HELP = 'only tokens that cannot be used any more: no refresh token and no grant token, and the access token expired';
const ACCESS_EXPIRED_HELP = 'only tokens whose access token has expired or has no known expiry (most still have a working refresh token)';

/** The tokens `--expired` or `--access-expired` select, and what to call them. */
function selection(options: { expired?: boolean; accessExpired?: boolean }, now: number) {
  if (options.expired && options.accessExpired) throw new CommandFailure('give --expired or --access-expired, not both', EXIT.usage);
  if (options.expired) return { keep: (token: OAuthToken) => cannotBeUsed(token, now), kind: 'expired token' };
  if (options.accessExpired) return { keep: (token: OAuthToken) => token.isExpired(now), kind: 'token with an expired access token' };
  return { keep: () => true, kind: 'token' };
}

const plural = (n: number, noun: string) => (n === 1 ? noun : noun.replace('token', 'tokens'));

export function registerTokens(program: Command): void {
  program
    .command('list')
    .description('List the stored tokens, secrets redacted')
    .addOption(storeOption())
    .option('--expired', EXPIRED_HELP)
    .option('--access-expired', ACCESS_EXPIRED_HELP)
    .option('--json', 'print a JSON array of tokens, for scripts')
    .option('--reveal', 'show secrets (client secret, access, refresh and grant tokens) whole')
    .addHelpText(
      'after',
      `
Examples:
  crm-tokens list
  crm-tokens list --expired --store postgres://app@db.internal/crm
  CRM_TOKEN_STORE=redis://127.0.0.1:6379 crm-tokens list --json

--expired: tokens nothing can use any more (no refresh or grant token, access token expired), the ones
purge --expired deletes. A token whose access token expired but which has a refresh token is refreshed on
next use: --access-expired lists those too.
The store is only read: a missing table, key prefix or file is an error (exit 3), never created.
${STORE_URL_HELP}`,
    )
    .action(async (options: ListOptions) => {
      const now = Date.now();
      const { keep, kind } = selection(options, now);
      await withStore(
        options.store,
        async ({ store, shownUrl }) => {
          const tokens = sortTokens(await store.getTokens()).filter(keep);
          if (options.json) {
            console.log(
              JSON.stringify(
                tokens.map((token) => shownToken(token, { reveal: options.reveal, now })),
                null,
                2,
              ),
            );
            return;
          }
          if (tokens.length === 0) {
            console.log(`No ${plural(2, kind)} in ${shownUrl}.`);
            return;
          }
          console.log(tokenTable(tokens, { reveal: options.reveal, now }));
          const accessExpired = tokens.filter((token) => token.isExpired(now)).length;
          const unusable = tokens.filter((token) => cannotBeUsed(token, now)).length;
          const summary =
            kind === 'token'
              ? `${count(tokens.length, 'token')} (${accessExpired} with an expired access token, ${unusable} that cannot be used any more)`
              : count(tokens.length, kind);
          console.log(`${summary} in ${shownUrl}.`);
        },
        'read',
      );
    });

  program
    .command('show')
    .description('Show every field of one token, secrets redacted')
    .argument('<id>', 'the token id (from list)')
    .addOption(storeOption())
    .option('--json', 'print the token as a JSON object')
    .option('--reveal', 'show secrets (client secret, access, refresh and grant tokens) whole')
    .addHelpText(
      'after',
      `
Examples:
  crm-tokens show 1
  crm-tokens show 1 --json --store file:./sdk_tokens.txt

Exit code 1 when no token has that id.
${STORE_URL_HELP}`,
    )
    .action(async (id: string, options: ListOptions) => {
      await withStore(
        options.store,
        async ({ store, shownUrl }) => {
          const token = await findById(store, id, shownUrl);
          if (!token) return;
          if (options.json) console.log(JSON.stringify(shownToken(token, { reveal: options.reveal }), null, 2));
          else console.log(tokenDetails(token, { reveal: options.reveal }));
        },
        'read',
      );
    });

  program
    .command('rm')
    .description('Delete one token')
    .argument('<id>', 'the token id (from list)')
    .addOption(storeOption())
    .addHelpText(
      'after',
      `
Examples:
  crm-tokens rm 3
  crm-tokens rm 3 --store mysql://root@127.0.0.1:3306/crm

The token is deleted from the store only: its refresh token is not revoked at Zoho.
Exit code 1 when no token has that id.
${STORE_URL_HELP}`,
    )
    .action(async (id: string, options: { store: string }) => {
      await withStore(
        options.store,
        async ({ store, shownUrl }) => {
          const token = await findById(store, id, shownUrl);
          if (!token) return;
          // Under the token's lifecycle lock where the store has one, as every deleter should: a refresh or a
          // rekey in flight cannot then write the token back after this delete.
          if (supportsLocking(store)) await store.withLock(refreshLockKey(id), () => store.deleteToken(id));
          else await store.deleteToken(id);
          console.log(`Deleted token ${id}${token.userName ? ` (${token.userName})` : ''} from ${shownUrl}.`);
        },
        'write',
      );
    });

  program
    .command('purge')
    .description('Delete every token, or every expired one, after asking')
    .addOption(storeOption())
    .option('--expired', `delete ${EXPIRED_HELP}`)
    .option('--access-expired', `delete ${ACCESS_EXPIRED_HELP}`)
    .option('-y, --yes', 'delete without asking (needed when stdin is not a terminal)')
    .addHelpText(
      'after',
      `
Examples:
  crm-tokens purge --expired
  crm-tokens purge --yes --store 'redis://127.0.0.1:6379?prefix=my-app'

On a terminal purge asks "Delete N tokens? [y/N]" first. Without a terminal (a script, a pipe) it deletes
nothing and exits with 2 unless --yes is given. Tokens are deleted from the store only, not revoked at Zoho.
--expired deletes the tokens nothing can use any more (no refresh or grant token, access token expired), as
list --expired shows them; --access-expired every token whose access token expired, refreshable or not.
Each token is read again just before it is deleted, under the lock TokenManager refreshes it under: one
changed since it was counted (refreshed meanwhile, say) is kept and reported.
${STORE_URL_HELP}`,
    )
    .action(async (options: { store: string; expired?: boolean; accessExpired?: boolean; yes?: boolean }) => {
      const { keep, kind } = selection(options, Date.now());
      if (!options.yes && !process.stdin.isTTY) {
        console.error('crm-tokens: purge deletes tokens; stdin is not a terminal to ask on, so pass --yes to confirm. Nothing deleted.');
        process.exitCode = EXIT.usage;
        return;
      }
      await withStore(
        options.store,
        async ({ store, shownUrl }) => {
          const doomed = (await store.getTokens()).filter(keep);
          if (doomed.length === 0) {
            console.log(`No ${plural(2, kind)} in ${shownUrl}: nothing deleted.`);
            return;
          }
          if (!options.yes && !(await confirm(`Store: ${shownUrl}\nDelete ${count(doomed.length, kind)}? [y/N] `))) {
            console.log('Nothing deleted.');
            return;
          }
          const { deleted, changed } = await deleteUnchanged(store, doomed);
          console.log(`Deleted ${count(deleted, kind)} from ${shownUrl}.`);
          if (changed.length > 0) {
            console.log(
              `Kept ${count(changed.length, 'token')} changed since ${changed.length === 1 ? 'it was' : 'they were'} counted (refreshed or saved meanwhile): ${changed.join(', ')}`,
            );
          }
        },
        'write',
      );
    });
}

/** The token with this id; when there is none, says so and sets exit code 1. */
async function findById(store: TokenStore, id: string, shownUrl: string): Promise<OAuthToken | null> {
  const token = await store.findTokenById(id);
  if (!token) {
    console.error(`crm-tokens: no token with id ${JSON.stringify(id)} in ${shownUrl}.`);
    process.exitCode = EXIT.problem;
  }
  return token;
}

/**
 * Deletes each token only if it is still as it was counted, by id: one refreshed or saved while the prompt
 * waited is kept. The check and the delete run under the lock `TokenManager` refreshes a token under
 * (`refreshLockKey(id)`), where the store has locks, so no refresh can land between them.
 */
async function deleteUnchanged(store: TokenStore, tokens: OAuthToken[]): Promise<{ deleted: number; changed: string[] }> {
  let deleted = 0;
  const changed: string[] = [];
  const deleteOne = async (counted: OAuthToken) => {
    const id = counted.id as string;
    const work = async (confirmLock?: () => Promise<void>) => {
      const current = await store.findTokenById(id);
      if (current === null) return;
      if (differingFields(counted, current).length > 0) {
        changed.push(id);
        return;
      }
      await confirmLock?.();
      await store.deleteToken(id);
      deleted++;
    };
    if (supportsLocking(store)) await store.withLock(refreshLockKey(id), (lock) => work(() => lock.confirm()));
    else await work();
  };
  // A few at a time: fast on server stores, without opening more connections than a pool has.
  for (let start = 0; start < tokens.length; start += 8) {
    await Promise.all(tokens.slice(start, start + 8).map(deleteOne));
  }
  return { deleted, changed };
}

async function confirm(question: string): Promise<boolean> {
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await prompt.question(question);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    prompt.close();
  }
}

/** `1 token`, `2 tokens with an expired access token`. */
function count(n: number, noun: string): string {
  return `${n} ${plural(n, noun)}`;
}
