import type { TokenStore } from '@crm/core';

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
}

/** What a case gets to work with. */
export interface CaseContext {
  /** The fresh store of this case. */
  store: TokenStore;
  /** True when the options have `reopen`: cases may then also read back through a second store. */
  canReopen: boolean;
  /** A second store over the same storage as `store` (needs the `reopen` option). */
  reopen(): Promise<TokenStore>;
  /** Another fresh store from `create()`, over storage of its own; closed and destroyed after the case. */
  createSibling(): Promise<TokenStore>;
  /** A value unique to this run, for user names and tokens: `${prefix}-<random>`. */
  unique(prefix: string): string;
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
  /** Why it failed (the assertion message), or why it was skipped. */
  error?: string;
}

export interface ConformanceReport {
  passed: number;
  failed: number;
  skipped: number;
  /** Groups switched off by the options (or by a missing `reopen`). */
  skippedGroups: ConformanceGroup[];
  results: CaseResult[];
}
