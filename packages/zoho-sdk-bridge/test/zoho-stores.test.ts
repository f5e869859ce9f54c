/**
 * The conformance suite on Zoho's own FileStore and DBStore, of both official SDKs, through
 * fromZohoTokenStore. They fail on their known defects, and on nothing that is only a difference of API
 * shape (the bridge converts that). The exact set of failing cases is pinned, so any change shows: a fixed
 * defect, or a new failure. docs/ZOHO-STORES.md explains each one.
 */
import type { StoreKind } from './conformance-options.js';
import { runStoreInChild } from './support/run-store.js';

/** Failing on every Zoho store: no user name uniqueness, lost parallel saves, their find rule 3. */
const SHARED = [
  'bad-input/errors-hide-secrets', // its rename step expects CONFLICT: nothing keeps user names unique
  'concurrency/parallel-mixed',
  'concurrency/parallel-new-users',
  'find-rules/rule-3-needs-both-credentials', // `refresh != null || grant && id && secret`
  'hostile-values/as-secrets-and-tokens',
  'hostile-values/as-user-names',
  'hostile-values/on-the-update-path',
  'processes/parallel-saves',
  'upsert/rename-conflict',
];

/** The CSV file: unquoted commas and line breaks shift columns; no lock; a save with an id targets only that id. */
const FILE_STORE = [
  ...SHARED,
  'find-rules/rule-3-grant-token-first', // an unknown grant token falls back to the refresh token
  'processes/find-racing-saves', // the file is rewritten in place: a reader sees it half written
  'upsert/unknown-id-uses-rules',
];

/** MySQL: string-built SQL, max(id)+1 on a text column, the first row for an unidentifiable token, a case-insensitive table. */
const DB_STORE = [
  ...SHARED,
  'bad-input/empty-string-finds-nothing',
  'concurrency/parallel-one-user',
  'delete/delete-token', // findTokenById of the deleted id throws inside the driver's callback: it never settles
  'delete/empty-store',
  'find-rules/exact-comparison',
  'find-rules/id-is-not-a-find-rule',
  'find-rules/rule-2-needs-no-credentials',
  'find-rules/rule-4-nothing-identifies',
  'hostile-values/declared-limits',
  'hostile-values/hostile-ids',
  'hostile-values/unicode-normalisation',
  'multi-user/twelve-in-a-row', // max(id)+1 on a text column: after '9' comes '10', then '10' again
  'persistence/reopen-sees-updates-and-deletes',
  'upsert/id-wins-over-rules',
  'upsert/rename-to-free-name',
  'upsert/update-by-id',
];

/** The Node.js SDK's DBStore also builds its find SQL from strings and returns the input token on a miss. */
const NODE_DB_STORE = [
  ...DB_STORE,
  'find-rules/no-match',
  'find-rules/rule-1-user-name-only',
  'find-rules/rule-3-grant-token-first',
  'hostile-values/wildcards-match-literally',
  'merge/no-match-leaves-input',
  'round-trip/returned-signatures-are-copies',
];

const EXPECTED: Array<[StoreKind, string[]]> = [
  ['typescript-file', FILE_STORE],
  ['nodejs-file', FILE_STORE],
  ['typescript-db', DB_STORE],
  ['nodejs-db', NODE_DB_STORE],
];

test.each(EXPECTED)(
  '%s fails exactly on its known defects',
  async (kind, expected) => {
    const run = await runStoreInChild(kind);
    const failed = run.report.results.filter((result) => result.status === 'failed').map((result) => result.id);
    expect(failed.sort()).toEqual([...expected].sort());
    // What the suite could run, it ran: no group switched off but locking (Zoho's stores have no lock).
    expect(run.report.skippedGroups.filter((group) => group !== 'locking')).toEqual([]);
    // Their DBStore's findTokenById throws inside the driver's callback: a rejection nobody can handle.
    if (kind.endsWith('-db')) expect(run.unhandledRejections).toBeGreaterThan(0);
    else expect(run.unhandledRejections).toBe(0);
  },
  600_000,
);
