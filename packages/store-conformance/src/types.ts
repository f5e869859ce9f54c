import type { TokenStore } from '@crm/core';
import type { TokenColumn } from '@crm/core/store-kit';

/** The behaviour groups of the suite. A store may switch off the groups it cannot support. */
export const CONFORMANCE_GROUPS = [
  'round-trip',
  'find-rules',
  'merge',
  'upsert',
  'multi-user',
  'delete',
  'persistence',
  'hostile-values',
  'concurrency',
  'bad-input',
  'closing',
  'faults',
  'processes',
  'locking',
] as const;

export type ConformanceGroup = (typeof CONFORMANCE_GROUPS)[number];

/** How the suite gets stores. */
export interface ConformanceOptions<Store extends TokenStore = TokenStore> {
  /** A fresh, empty store for one case. Use random names (table, prefix, file) so cases never collide. */
  create(): Store | Promise<Store>;
  /** Cleans up after one case (drop the table, remove the file). The suite calls `store.close()` itself, before this. */
  destroy?(store: Store): void | Promise<void>;
  /** A second store over the same storage as `store`, for persistence checks. Without it, `persistence` is skipped. */
  reopen?(store: Store): Store | Promise<Store>;
  /** Groups this store cannot support; the report names them as skipped. */
  skip?: ConformanceGroup[];
  /** Only run cases whose id or title contains this text. */
  filter?: string;
  /** Milliseconds one case may take before it fails. Default 30000. */
  caseTimeoutMs?: number;

  /** Runs once before the first case (create a test database, start a server). */
  setup?(): void | Promise<void>;
  /** Runs once after the last case, also after failures (drop the test database). */
  teardown?(): void | Promise<void>;

  /**
   * The longest value, in characters, the store keeps in a column (a store on Zoho's `varchar(255)` table
   * declares `{ access_token: 255, ... }`). Values up to the limit must round-trip; longer ones must fail with
   * VALUE_TOO_LONG and write nothing. A column without a limit must keep at least 64 KB.
   */
  valueLimits?: Partial<Record<TokenColumn, number>>;

  /**
   * Makes the store's backend fail the next `saveToken` on `store` with a real server-side error (a trigger
   * that raises, a key of the wrong type, a read-only file). The `faults` group uses it to check that no
   * token value reaches the error or its `cause`; without it that case is skipped.
   */
  injectFault?(store: Store): void | Promise<void>;

  /**
   * Cross-process checks (the `processes` group). `share(store)` describes the storage of `store` as JSON;
   * a worker process loads `module` (the file exporting these options, as the CLI loads it) and calls
   * `openShared(description)` to open a store over the same storage. `module` is set by the CLI; with jest,
   * pass it to `describeTokenStore`. A store that cannot be shared between processes sets
   * `sharedAcrossProcesses: false`, and the report says the group was switched off.
   */
  share?(store: Store): unknown | Promise<unknown>;
  openShared?(description: unknown): Store | Promise<Store>;
  module?: string;
  sharedAcrossProcesses?: boolean;
}

/** What a case gets to work with. */
export interface CaseContext {
  /** The fresh store of this case. Every promise its methods return is awaited before the suite closes it. */
  store: TokenStore;
  /** True when the options have `reopen`: cases may then also read back through a second store. */
  canReopen: boolean;
  /** A second store over the same storage as `store` (needs the `reopen` option). */
  reopen(): Promise<TokenStore>;
  /**
   * A second store over the same storage as `store`, opened in this process with `share` and `openShared`
   * (needs both options); closed after the case.
   */
  openShared(): Promise<TokenStore>;
  /** Another fresh store from `create()`, over storage of its own; closed and destroyed after the case. */
  createSibling(): Promise<TokenStore>;
  /** A value unique to this run, for user names and tokens: `${prefix}-<random>`. */
  unique(prefix: string): string;
  /** The declared column limits (`valueLimits`), `{}` when the store declares none. */
  valueLimits: Partial<Record<TokenColumn, number>>;
  /** The options the suite runs with, for the groups that need `injectFault`, `share`, `openShared` or `module`. */
  options: ConformanceOptions;
  /** `options.injectFault` applied to this case's store (the object `create()` returned). */
  injectFault(): Promise<void>;
  /** `options.share` applied to this case's store. */
  share(): Promise<unknown>;
  /** Aborted when the case ends (passed, failed or timed out): stop loops, kill worker processes. */
  signal: AbortSignal;
  /** Ends the case as skipped, with the reason in the report (jest counts it as passed: it cannot skip at run time). */
  skip(reason: string): never;
}

export interface ConformanceCase {
  /** Stable id, e.g. `find-rules/user-name-wins`. */
  id: string;
  title: string;
  group: ConformanceGroup;
  /** Throws (an assertion error) when the store does not behave. */
  run(context: CaseContext): Promise<void>;
}

export type CaseStatus = 'passed' | 'failed' | 'skipped';

export interface CaseResult {
  id: string;
  title: string;
  group: ConformanceGroup;
  status: CaseStatus;
  durationMs: number;
  /**
   * Why it failed (the assertion message; for an error that is not an assertion, its name, message and first
   * stack lines), or why it was skipped.
   */
  error?: string;
}

export interface ConformanceReport {
  passed: number;
  failed: number;
  skipped: number;
  /** Groups switched off by the options (declared in `skip`, or missing `reopen`, `injectFault`, `share`...). */
  skippedGroups: ConformanceGroup[];
  /** Why each group in `skippedGroups` is switched off. */
  skipReasons: Partial<Record<ConformanceGroup, string>>;
  results: CaseResult[];
  /** Set when `teardown()` threw; a run with a failed teardown is not a clean run. */
  teardownError?: string;
}
