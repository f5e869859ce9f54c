/** `list`, `show ID`, `rm ID`, `purge`: looking after the tokens of one store. */
import { createInterface } from 'node:readline/promises';
import type { OAuthToken, TokenStore } from '@crm/core';
import type { Command } from 'commander';
import { EXIT } from '../output.js';
import { STORE_URL_HELP, storeOption, withStore } from '../store.js';
import { shownToken, sortTokens, tokenDetails, tokenTable } from '../table.js';

interface ListOptions {
  store: string;
  expired?: boolean;
  json?: boolean;
  reveal?: boolean;
}

const EXPIRED_HELP = 'only tokens whose access token has expired or has no known expiry (their refresh token may still work)';

export function registerTokens(program: Command): void {
  program
    .command('list')
    .description('List the stored tokens, secrets redacted')
    .addOption(storeOption())
    .option('--expired', EXPIRED_HELP)
    .option('--json', 'print a JSON array of tokens, for scripts')
    .option('--reveal', 'show secrets (client secret, access, refresh and grant tokens) whole')
    .addHelpText(
      'after',
      `
Examples:
  crm-tokens list
  crm-tokens list --expired --store postgres://app@db.internal/crm
  CRM_TOKEN_STORE=redis://127.0.0.1:6379 crm-tokens list --json
${STORE_URL_HELP}`,
    )
    .action(async (options: ListOptions) => {
      await withStore(options.store, async ({ store, shownUrl }) => {
        const now = Date.now();
        const all = sortTokens(await store.getTokens());
        const tokens = options.expired ? all.filter((token) => token.isExpired(now)) : all;
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
        const kind = options.expired ? 'expired tokens' : 'tokens';
        if (tokens.length === 0) {
          console.log(`No ${kind} in ${shownUrl}.`);
          return;
        }
        console.log(tokenTable(tokens, { reveal: options.reveal, now }));
        const expired = tokens.filter((token) => token.isExpired(now)).length;
        const summary = options.expired
          ? `${count(tokens.length, 'expired token')}`
          : `${count(tokens.length, 'token')} (${expired} expired)`;
        console.log(`${summary} in ${shownUrl}.`);
      });
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
      await withStore(options.store, async ({ store, shownUrl }) => {
        const token = await findById(store, id, shownUrl);
        if (!token) return;
        if (options.json) console.log(JSON.stringify(shownToken(token, { reveal: options.reveal }), null, 2));
        else console.log(tokenDetails(token, { reveal: options.reveal }));
      });
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
      await withStore(options.store, async ({ store, shownUrl }) => {
        const token = await findById(store, id, shownUrl);
        if (!token) return;
        await store.deleteToken(id);
        console.log(`Deleted token ${id}${token.userName ? ` (${token.userName})` : ''} from ${shownUrl}.`);
      });
    });

  program
    .command('purge')
    .description('Delete every token, or every expired one, after asking')
    .addOption(storeOption())
    .option('--expired', `delete ${EXPIRED_HELP}`)
    .option('-y, --yes', 'delete without asking (needed when stdin is not a terminal)')
    .addHelpText(
      'after',
      `
Examples:
  crm-tokens purge --expired
  crm-tokens purge --yes --store 'redis://127.0.0.1:6379?prefix=my-app'

On a terminal purge asks "Delete N tokens? [y/N]" first. Without a terminal (a script, a pipe) it deletes
nothing and exits with 2 unless --yes is given. Tokens are deleted from the store only, not revoked at Zoho.
${STORE_URL_HELP}`,
    )
    .action(async (options: { store: string; expired?: boolean; yes?: boolean }) => {
      if (!options.yes && !process.stdin.isTTY) {
        console.error('crm-tokens: purge deletes tokens; stdin is not a terminal to ask on, so pass --yes to confirm. Nothing deleted.');
        process.exitCode = EXIT.usage;
        return;
      }
      await withStore(options.store, async ({ store, shownUrl }) => {
        const all = await store.getTokens();
        const now = Date.now();
        const doomed = options.expired ? all.filter((token) => token.isExpired(now)) : all;
        const kind = options.expired ? 'expired token' : 'token';
        if (doomed.length === 0) {
          console.log(`No ${kind}s in ${shownUrl}: nothing deleted.`);
          return;
        }
        if (!options.yes && !(await confirm(`Store: ${shownUrl}\nDelete ${count(doomed.length, kind)}? [y/N] `))) {
          console.log('Nothing deleted.');
          return;
        }
        // By id, so exactly the tokens counted are deleted, not one saved meanwhile.
        await deleteAll(store, doomed);
        console.log(`Deleted ${count(doomed.length, kind)} from ${shownUrl}.`);
      });
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

async function deleteAll(store: TokenStore, tokens: OAuthToken[]): Promise<void> {
  const ids = tokens.map((token) => token.id).filter((id): id is string => id !== null);
  // A few at a time: fast on server stores, without opening more connections than a pool has.
  for (let start = 0; start < ids.length; start += 8) {
    await Promise.all(ids.slice(start, start + 8).map((id) => store.deleteToken(id)));
  }
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

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
