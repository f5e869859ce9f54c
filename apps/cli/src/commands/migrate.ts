/**
 * `crm-tokens migrate --from URL --to URL [--dry-run]`: copies every token into another store, keeping ids.
 * A token is saved as a copy with the same id: the contract inserts a token whose id is not stored, and no
 * find rule matches, with the id it has (the suite's `upsert/insert-keeps-given-id`). Before saving, the plan
 * sets aside what a save would not copy faithfully: a target token with the same id but other values, and a
 * target token that a find rule would match under another id (the save would update that one instead).
 * Those are reported, never overwritten. Running it again copies nothing. Afterwards the target is read back
 * and compared field by field. Only ids, counts and field names are printed: never a value.
 */
import { existsSync } from 'node:fs';
import { type OAuthToken, redactUrl, TOKEN_FIELDS, type TokenField, type TokenStore, TokenStoreError } from '@crm/core';
import { lookupKey, matchesLookupKey } from '@crm/core/store-kit';
import type { Command } from 'commander';
import { openStoreUrl, parseStoreUrl } from '../conformance-url-options.js';
import { EXIT } from '../output.js';
import { startProgress } from '../progress.js';
import { readOnlyUrl } from '../store.js';

interface MigrateFlags {
  from: string;
  to: string;
  dryRun?: boolean;
}

const usage = (message: string) => TokenStoreError.invalidArgument({ store: 'crm-tokens', operation: 'open' }, message);

/** The fields in which two tokens differ (the user signature by its name). */
export function differingFields(a: OAuthToken, b: OAuthToken): TokenField[] {
  return TOKEN_FIELDS.filter((field) =>
    field === 'userSignature' ? (a.userSignature?.name ?? null) !== (b.userSignature?.name ?? null) : a[field] !== b[field],
  );
}

const LOOKUP_NAMES = { userName: 'user name', accessToken: 'access token', grantToken: 'grant token', refreshToken: 'refresh token' };

/** A file store whose file is missing: nothing to read, and opening SQLite would create the file. */
function missingFile(url: string): string | null {
  const location = parseStoreUrl(url);
  if ((location.kind === 'sqlite' && location.filename !== ':memory:') || location.kind === 'file') {
    return existsSync(location.filename as string) ? null : (location.filename as string);
  }
  return null;
}

/** A read of a store whose table is not there yet (opened without creating it): PostgreSQL's 42P01, MySQL's ER_NO_SUCH_TABLE. */
function isMissingTable(error: unknown): boolean {
  if (!TokenStoreError.is(error)) return false;
  for (let cause: unknown = error.cause; cause; cause = (cause as { cause?: unknown }).cause) {
    const code = (cause as { code?: unknown }).code;
    if (code === '42P01' || code === 'ER_NO_SUCH_TABLE') return true;
    if (/no such table/i.test(String((cause as { message?: unknown }).message ?? ''))) return true;
  }
  return false;
}

type Outcome = 'copy' | 'already' | 'conflict' | 'unstorable';

interface PlannedToken {
  token: OAuthToken;
  outcome: Outcome;
  /** Why it is not copied (ids and field names only). */
  reason?: string;
}

/** What a save of each source token would do to the target, decided before anything is written. */
function plan(sourceTokens: OAuthToken[], targetTokens: OAuthToken[]): PlannedToken[] {
  const targetById = new Map(targetTokens.map((token) => [token.id, token]));
  const seen = new Set<string>();
  const copies: OAuthToken[] = [];
  return sourceTokens.map((token): PlannedToken => {
    const id = token.id as string;
    if (seen.has(id))
      return { token, outcome: 'conflict', reason: `token ${id} appears more than once in the source; the first was taken` };
    seen.add(id);
    const stored = targetById.get(id);
    if (stored) {
      const fields = differingFields(token, stored);
      if (fields.length === 0) return { token, outcome: 'already' };
      return {
        token,
        outcome: 'conflict',
        reason: `token ${id} is in the target with other values (${fields.join(', ')}); not overwritten`,
      };
    }
    if (token.accessToken === null && token.refreshToken === null && token.grantToken === null) {
      return { token, outcome: 'unstorable', reason: `token ${id} has no access, refresh or grant token: a store refuses it` };
    }
    const key = lookupKey(token);
    if (key !== null) {
      const what = LOOKUP_NAMES[key.field];
      const earlier = copies.find((copy) => matchesLookupKey(copy, key));
      if (earlier) return { token, outcome: 'conflict', reason: `token ${id} has the ${what} of source token ${earlier.id}; not copied` };
      const other = targetTokens.find((candidate) => matchesLookupKey(candidate, key));
      if (other) return { token, outcome: 'conflict', reason: `token ${id} has the ${what} of target token ${other.id}; not overwritten` };
    }
    copies.push(token);
    return { token, outcome: 'copy' };
  });
}

async function closeQuietly(store: TokenStore | null): Promise<void> {
  await store?.close?.().catch(() => {});
}

async function migrate(flags: MigrateFlags): Promise<number> {
  if (flags.from === flags.to) throw usage('--from and --to name the same store');
  const fromShown = redactUrl(flags.from);
  const toShown = redactUrl(flags.to);
  const missingSource = missingFile(flags.from);
  if (missingSource !== null) throw usage(`the source file ${missingSource} does not exist`);
  // Neither side may change before the plan is made: no table created or altered, no SQLite file created.
  const targetAbsent = missingFile(flags.to) !== null;
  let source: TokenStore | null = null;
  let target: TokenStore | null = null;
  try {
    // Read-only: nothing created or altered, and a SQLite file keeps its journal mode.
    source = await openStoreUrl(readOnlyUrl(flags.from));
    const sourceTokens = await source.getTokens();
    let targetTokens: OAuthToken[] = [];
    if (!targetAbsent) {
      try {
        target = await openStoreUrl(readOnlyUrl(flags.to));
        targetTokens = await target.getTokens();
      } catch (error) {
        if (!isMissingTable(error)) throw error;
      }
      await closeQuietly(target);
      target = null;
    }
    console.log(`from ${fromShown}: ${sourceTokens.length} token${sourceTokens.length === 1 ? '' : 's'}`);
    console.log(`to   ${toShown}: ${targetTokens.length} token${targetTokens.length === 1 ? '' : 's'}`);

    const planned = plan(sourceTokens, targetTokens);
    const count = (outcome: Outcome) => planned.filter((item) => item.outcome === outcome).length;
    const problems = planned.filter((item) => item.reason !== undefined);
    for (const item of problems) console.log(`${item.outcome === 'conflict' ? 'conflict' : 'not copied'}: ${item.reason}`);
    const notCopied = count('conflict') + count('unstorable');

    if (flags.dryRun) {
      console.log(
        `dry run, nothing written: would copy ${count('copy')}, ${count('already')} already there, ${count('conflict')} conflict${count('conflict') === 1 ? '' : 's'}` +
          (count('unstorable') > 0 ? `, ${count('unstorable')} not storable` : ''),
      );
      return notCopied > 0 ? EXIT.problem : EXIT.ok;
    }

    target = await openStoreUrl(flags.to);
    const countBefore = (await target.getTokens()).length;
    const copies = planned.filter((item) => item.outcome === 'copy');
    const failures: string[] = [];
    let copied = 0;
    const progress = startProgress('copying', copies.length);
    let outage: TokenStoreError | null = null;
    try {
      for (const { token } of copies) {
        const copy = token.clone();
        try {
          await target.saveToken(copy);
        } catch (error) {
          // A store that cannot be reached ends the run; a token it refuses is reported, and the rest go on.
          if (TokenStoreError.is(error) && error.code === 'BACKEND_UNAVAILABLE') {
            outage = error;
            break;
          }
          failures.push(`token ${token.id}: ${TokenStoreError.is(error) ? error.message : 'the save failed'}`);
          progress.step(`${token.id} failed`);
          continue;
        }
        if (copy.id !== token.id) failures.push(`token ${token.id} was stored as ${copy.id}: the target store did not keep its id`);
        else copied++;
        progress.step(`copied ${token.id}`);
      }
    } finally {
      progress.stop();
    }
    if (outage !== null) {
      // Cut off midway: say how far it got. Saves keep ids and a rerun skips what is already there.
      for (const failure of failures) console.log(`failed: ${failure}`);
      console.error(`crm-tokens: ${outage.message}`);
      console.log(`${copied} of ${copies.length} copied; the target is partly migrated; run the same command again to finish`);
      return EXIT.unavailable;
    }
    for (const failure of failures) console.log(`failed: ${failure}`);
    console.log(
      `${copied} copied, ${count('already')} already there, ${count('conflict')} conflict${count('conflict') === 1 ? '' : 's'}` +
        (count('unstorable') > 0 ? `, ${count('unstorable')} not storable` : '') +
        (failures.length > 0 ? `, ${failures.length} failed` : ''),
    );

    // Verification: the count, then every token this run is responsible for, field by field.
    const mismatches: string[] = [];
    const countAfter = (await target.getTokens()).length;
    if (countAfter !== countBefore + copied) {
      mismatches.push(`the target holds ${countAfter} tokens, expected ${countBefore + copied} (${countBefore} before + ${copied} copied)`);
    }
    const expected = planned.filter((item) => item.outcome === 'already' || item.outcome === 'copy');
    for (const { token } of expected) {
      const stored = await target.findTokenById(token.id as string);
      if (stored === null) {
        if (!failures.some((failure) => failure.startsWith(`token ${token.id}`)))
          mismatches.push(`token ${token.id} is missing in the target`);
        continue;
      }
      const fields = differingFields(token, stored);
      if (fields.length > 0) mismatches.push(`token ${token.id} differs in ${fields.join(', ')}`);
    }
    if (mismatches.length > 0) {
      for (const mismatch of mismatches) console.log(`verification failed: ${mismatch}`);
      return EXIT.problem;
    }
    console.log(
      `verified: the target holds ${countAfter} token${countAfter === 1 ? '' : 's'}; ` +
        `the ${expected.length - failures.length} migrated match the source in every field`,
    );
    return notCopied > 0 || failures.length > 0 ? EXIT.problem : EXIT.ok;
  } finally {
    await closeQuietly(source);
    await closeQuietly(target);
  }
}

export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description('Copy every token from one store into another, keeping ids; running it again copies nothing')
    .requiredOption('--from <url>', 'the store to copy from, e.g. file:./sdk_tokens.txt or mysql://root@host/db?table=oauthtoken')
    .requiredOption('--to <url>', 'the store to copy into, e.g. postgres://user@host/db or redis://host:6379')
    .option('--dry-run', 'write nothing: read both stores and say what would be copied')
    .addHelpText(
      'after',
      `
Every token is saved into the target with its own id, after a plan made from both stores:
  copied            the target has no token with its id, and none with its user name (or other find key)
  already there     the target has a token with its id and the same values in every field
  conflict          the target has its id with other values, or another token with its user name (or key);
                    reported and left as it is (remove one of the two, then run again)
  not storable      it has no access, refresh or grant token, which every store refuses
Afterwards the target is read back: the token count, and every migrated token field by field. The source is
never changed (its table is neither created nor altered). A progress bar shows on a terminal, plain lines
otherwise. Output names tokens by id only; no secret is printed.
Exit code 0: everything copied or already there and verified; 1: a conflict, a failed save or a mismatch;
3: a store could not be reached (cut off midway, it says how many were copied: run the same command again).`,
    )
    .action(async (flags: MigrateFlags) => {
      process.exit(await migrate(flags));
    });
}
