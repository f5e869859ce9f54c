/**
 * `crm-tokens doctor [--store URL]`: checks a store without changing it. Connectivity (timed), the schema
 * (table, key prefix or file present and in the expected shape), permissions (the file's mode, the table grants
 * of the current database user), the stored tokens (how many, expired, unidentifiable) and the lock. The
 * backend is inspected over a connection of its own, through the driver the store package uses; the store
 * itself is opened with `createSchema=false` (a SQLite file read-only), so a missing table is reported, not created,
 * and a SQLite file keeps its journal mode.
 */
import { redactUrl, supportsLocking, type TokenStore, TokenStoreError } from '@crm/core';
import type { Command } from 'commander';
import { openStoreUrl, parseStoreUrl } from '../conformance-url-options.js';
import { EXIT } from '../output.js';
import { type Check, probe } from '../probe.js';
import { readOnlyUrl, storeOption } from '../store.js';
import { cannotBeUsed } from '../usable.js';

/** Counts through the store itself: it reads the tokens exactly as an application would. */
async function tokenChecks(store: TokenStore): Promise<Check[]> {
  let tokens: Awaited<ReturnType<TokenStore['getTokens']>>;
  try {
    tokens = await store.getTokens();
  } catch (error) {
    if (TokenStoreError.is(error) && error.code !== 'BACKEND_UNAVAILABLE')
      return [{ status: 'fail', name: 'tokens', detail: error.message }];
    throw error;
  }
  const now = Date.now();
  const expired = tokens.filter((token) => token.isExpired(now));
  // The rule of `list --expired` and `purge --expired`: no refresh or grant token, and the access token expired.
  const dead = tokens.filter((token) => cannotBeUsed(token, now));
  const unidentifiable = tokens.filter(
    (token) => token.userSignature === null && token.accessToken === null && token.refreshToken === null && token.grantToken === null,
  );
  const ids = (list: typeof tokens) =>
    list
      .slice(0, 10)
      .map((token) => token.id)
      .join(', ') + (list.length > 10 ? ', ...' : '');
  return [
    { status: 'ok', name: 'tokens', detail: `${tokens.length} stored` },
    dead.length > 0
      ? {
          status: 'warn',
          name: 'expired',
          detail: `${expired.length} with an expired access token; ${dead.length} of them have no refresh or grant token and cannot be used any more (${ids(dead)}); crm-tokens purge --expired deletes those`,
        }
      : { status: 'ok', name: 'expired', detail: `${expired.length} with an expired access token (refreshed on next use)` },
    unidentifiable.length > 0
      ? {
          status: 'warn',
          name: 'unidentifiable',
          detail: `${unidentifiable.length} without a user name or any access, refresh or grant token (${ids(unidentifiable)})`,
        }
      : { status: 'ok', name: 'unidentifiable', detail: '0 without a user name or any access, refresh or grant token' },
  ];
}

function lockCheck(store: TokenStore): Check {
  return supportsLocking(store)
    ? { status: 'ok', name: 'lock', detail: 'the store offers withLock: one refresh per token across processes' }
    : { status: 'warn', name: 'lock', detail: 'the store has no withLock: concurrent processes may each refresh a token' };
}

async function doctor(url: string): Promise<number> {
  const location = parseStoreUrl(url);
  console.log(`doctor: ${redactUrl(url)}`);
  const print = (check: Check) => console.log(`${check.status.padEnd(4)}  ${check.name.padEnd(14)}  ${check.detail}`);
  const found = await probe(location);
  for (const check of found.checks) print(check);
  if (!found.reachable) return EXIT.unavailable;
  const checks = [...found.checks];
  // A SQLite file that is not there would be created by opening it; every other store opens without writing.
  if (!(location.kind === 'sqlite' && !found.storagePresent && location.filename !== ':memory:')) {
    const store = await openStoreUrl(readOnlyUrl(url));
    try {
      const more = found.storagePresent ? await tokenChecks(store) : [{ status: 'ok' as const, name: 'tokens', detail: '0 stored' }];
      more.push(lockCheck(store));
      for (const check of more) print(check);
      checks.push(...more);
    } finally {
      await store.close?.().catch(() => {});
    }
  }
  return checks.some((check) => check.status === 'fail') ? EXIT.problem : EXIT.ok;
}

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('Check a store: connectivity, schema, permissions, expired and unidentifiable tokens, the lock')
    .addOption(storeOption())
    .addHelpText(
      'after',
      `
One line per check, ok, warn or fail; nothing is changed (a missing table is reported, not created):
  connectivity    the server answers (and how fast), or the file opens
  schema          the table with Zoho's columns and a unique user name index, Zoho's CSV header, the Redis id index
  permissions     the file's mode (group or others may read it: warn) or the database user's
                  SELECT, INSERT, UPDATE and DELETE on the table
  tokens, expired, unidentifiable   counts read through the store
  lock            whether the store offers withLock
Exit code 0: no check failed (warnings allowed); 1: a check failed; 3: the store could not be reached.`,
    )
    .action(async (flags: { store: string }) => {
      process.exit(await doctor(flags.store));
    });
}
