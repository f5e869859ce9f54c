/**
 * What the `processes` group's worker processes do, and the token versions they write. Shared by the worker
 * (which writes) and the cases (which check what was written).
 */
import { createHash } from 'node:crypto';
import * as core from '@crm/core';
import { OAuthToken, supportsLocking, type TokenStore, TokenStoreError, UserSignature } from '@crm/core';

/** Save `count` new users and `updates` complete versions of one shared user, `inFlight` saves at a time. */
export interface SaveUsersJob {
  kind: 'save-users';
  tag: string;
  worker: number;
  count: number;
  sharedName: string;
  updates: number;
  inFlight: number;
}

/** Save complete versions `first`..`last` of one user, one after another. */
export interface SaveVersionsJob {
  kind: 'save-versions';
  name: string;
  first: number;
  last: number;
}

/** Find one user by name until told to stop; check every sample is one complete version. */
export interface FindLoopJob {
  kind: 'find-loop';
  name: string;
}

/**
 * Take the lock on `key`, report `{ acquiredAt }` as progress, hold it for `holdMs` (null: until told to stop
 * or until the lease is lost), then check `confirm()` and leave `withLock`.
 */
export interface HoldLockJob {
  kind: 'hold-lock';
  key: string;
  leaseMs: number;
  waitMs: number;
  holdMs: number | null;
}

/**
 * `rounds` times: under the lock on `key`, read the counter kept in the `expiryTime` of user `name`, pause,
 * `confirm()`, write the counter plus one. Records when each round held the lock.
 */
export interface CounterLoopJob {
  kind: 'counter-loop';
  key: string;
  name: string;
  rounds: number;
  leaseMs: number;
  pauseMs: number;
}

/** `callers` concurrent `getAccessToken(name)` through one TokenManager of this process. */
export interface ManagerCallersJob {
  kind: 'manager-callers';
  name: string;
  callers: number;
  accountsUrl: string;
}

export type WorkerJob = SaveUsersJob | SaveVersionsJob | FindLoopJob | HoldLockJob | CounterLoopJob | ManagerCallersJob;

export interface SaveUsersResult {
  ids: string[];
  sharedIds: string[];
}

export interface FindLoopResult {
  samples: number;
  mixes: string[];
  versionsSeen: number;
  /** The version a find returned after the parent said stop (all saves are done by then). */
  finalVersion: number | null;
}

export interface HoldLockResult {
  acquiredAt: number;
  /** When the work ended (before `withLock` released). */
  leftAt: number;
  /** The code of the signal's abort reason, when the holder learned it lost the lease; null while it held it. */
  lost: string | null;
  /** How `confirm()` settled at the end: `resolved`, or the code it rejected with. */
  confirmed: string;
}

export interface CounterLoopResult {
  /** When each round held the lock, in epoch milliseconds with fractions (`performance.timeOrigin + now()`). */
  intervals: Array<[number, number]>;
}

export interface ManagerCallersResult {
  /** sha256 of each caller's access token, in hex: equal tokens compare equal, and no secret crosses the pipe. */
  accessTokenHashes: string[];
  /** How the calls that rejected failed (error name and code). */
  errors: string[];
}

/** What a job gets besides its store: a way to report progress before its result, and the parent's `stop`. */
export interface JobControl {
  report(progress: unknown): Promise<void>;
  stopped(): boolean;
  /** Resolves when the parent says stop. */
  stop: Promise<void>;
}

/** Messages between the suite and a worker, over the IPC channel of `child_process.fork`. */
export type ToWorker = { type: 'start'; module: string; description: unknown; job: WorkerJob } | { type: 'go' } | { type: 'stop' };
export type FromWorker =
  | { type: 'ready' }
  | { type: 'progress'; progress: unknown }
  | { type: 'result'; result: unknown }
  | { type: 'failed'; error: string };

const VERSIONED_FIELDS = [
  ['accessToken', 'access'],
  ['refreshToken', 'refresh'],
  ['clientId', 'client'],
  ['clientSecret', 'secret'],
  ['grantToken', 'grant'],
  ['redirectUrl', 'redirect'],
  ['apiDomain', 'domain'],
] as const;

/** Version `n` of a user: every field says `n`, and `expiryTime` is `n`, so a mix of two versions shows. */
export function version(name: string, n: number): OAuthToken {
  const token = new OAuthToken({ userSignature: new UserSignature(name), expiryTime: n });
  for (const [field, prefix] of VERSIONED_FIELDS) token[field] = `${prefix}-${name}-v${n}`;
  return token;
}

/** The fields of `token` that do not belong to the version its `expiryTime` names (empty for a complete version). */
export function mixedFields(name: string, token: OAuthToken): string[] {
  const n = token.expiryTime;
  if (n === null) return ['expiryTime'];
  const wrong: string[] = VERSIONED_FIELDS.filter(([field, prefix]) => token[field] !== `${prefix}-${name}-v${n}`).map(([field]) => field);
  if (token.userSignature?.name !== name) wrong.push('userSignature');
  return wrong;
}

/** A new user of one worker. */
export function workerUser(job: SaveUsersJob, n: number): OAuthToken {
  const name = `${job.tag}-w${job.worker}-u${n}`;
  return new OAuthToken({
    userSignature: new UserSignature(name),
    clientId: `client-${job.tag}`,
    clientSecret: `secret-${job.tag}`,
    refreshToken: `refresh-${name}`,
    accessToken: `access-${name}`,
    expiryTime: n,
  });
}

/** Runs `tasks` with at most `limit` in flight. */
async function pool(tasks: Array<() => Promise<void>>, limit: number): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, tasks.length) }, async () => {
    while (next < tasks.length) await tasks[next++]!();
  });
  await Promise.all(lanes);
}

export async function saveUsers(store: TokenStore, job: SaveUsersJob): Promise<SaveUsersResult> {
  const ids: string[] = [];
  const sharedIds: string[] = [];
  const saveUser = (n: number) => async () => {
    const token = workerUser(job, n);
    await store.saveToken(token);
    ids.push(token.id as string);
  };
  // Version numbers of the shared user: worker × 1000 + update, so each save is a distinct complete version.
  const saveShared = (m: number) => async () => {
    const token = version(job.sharedName, job.worker * 1000 + m);
    await store.saveToken(token);
    sharedIds.push(token.id as string);
  };
  // The shared user's updates are spread among the new users, so they race other processes' saves.
  const tasks: Array<() => Promise<void>> = [];
  const step = Math.max(1, Math.ceil(job.count / Math.max(1, job.updates)));
  let updates = 0;
  for (let n = 0; n < job.count; n++) {
    if (n % step === 0 && updates < job.updates) tasks.push(saveShared(updates++));
    tasks.push(saveUser(n));
  }
  while (updates < job.updates) tasks.push(saveShared(updates++));
  await pool(tasks, job.inFlight);
  return { ids, sharedIds };
}

export async function saveVersions(store: TokenStore, job: SaveVersionsJob): Promise<{ saved: number }> {
  for (let n = job.first; n <= job.last; n++) await store.saveToken(version(job.name, n));
  return { saved: job.last - job.first + 1 };
}

export async function findLoop(store: TokenStore, job: FindLoopJob, stopped: () => boolean): Promise<FindLoopResult> {
  const mixes: string[] = [];
  const seen = new Set<number>();
  let samples = 0;
  const find = () => store.findToken(new OAuthToken({ userSignature: new UserSignature(job.name) }));
  while (!stopped()) {
    // Yield to the event loop each time: a store answering from memory would otherwise never let `stop` in.
    await new Promise((resolve) => setImmediate(resolve));
    const found = await find();
    samples++;
    if (found === null) {
      mixes.push('the user was not found');
      continue;
    }
    const wrong = mixedFields(job.name, found);
    if (wrong.length > 0) mixes.push(`version ${found.expiryTime} with ${wrong.join(', ')} of another version`);
    else seen.add(found.expiryTime as number);
  }
  const last = await find();
  return { samples, mixes: [...new Set(mixes)].slice(0, 10), versionsSeen: seen.size, finalVersion: last?.expiryTime ?? null };
}

/** The code of a TokenStoreError (or of anything with a string `code`), else its name: for reports that hold no secret. */
export function errorCode(error: unknown): string {
  if (TokenStoreError.is(error)) return error.code;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  return error instanceof Error ? error.name : typeof error;
}

/** `resolved`, or the code the promise rejected with. */
export async function settledAs(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    return errorCode(error);
  }
}

/** Resolves when `signal` aborts (at once when it already has). */
export function abortedSignal(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Wall-clock time with fractions of a millisecond, comparable between processes of one machine. */
export function preciseNow(): number {
  return performance.timeOrigin + performance.now();
}

/** The token that keeps a counter in its `expiryTime`, for the counter loop. */
export function counterToken(name: string, count: number): OAuthToken {
  return new OAuthToken({ userSignature: new UserSignature(name), accessToken: `counter-${name}`, expiryTime: count });
}

export async function holdLock(store: TokenStore, job: HoldLockJob, control: JobControl): Promise<HoldLockResult> {
  if (!supportsLocking(store)) throw new Error('the store opened by openShared has no withLock');
  return store.withLock(
    job.key,
    async (lock) => {
      const acquiredAt = Date.now();
      await control.report({ acquiredAt });
      const until: Array<Promise<unknown>> = [control.stop, abortedSignal(lock.signal)];
      if (job.holdMs !== null) until.push(sleep(job.holdMs));
      await Promise.race(until);
      const lost = lock.signal.aborted ? errorCode(lock.signal.reason) : null;
      const confirmed = await settledAs(lock.confirm());
      return { acquiredAt, leftAt: Date.now(), lost, confirmed };
    },
    { leaseMs: job.leaseMs, waitMs: job.waitMs },
  );
}

export async function counterLoop(store: TokenStore, job: CounterLoopJob): Promise<CounterLoopResult> {
  if (!supportsLocking(store)) throw new Error('the store opened by openShared has no withLock');
  const intervals: Array<[number, number]> = [];
  for (let round = 0; round < job.rounds; round++) {
    await store.withLock(
      job.key,
      async (lock) => {
        const start = preciseNow();
        const found = await store.findToken(new OAuthToken({ userSignature: new UserSignature(job.name) }));
        if (found === null || typeof found.expiryTime !== 'number') throw new Error('the counter token was not found');
        await sleep(job.pauseMs); // widens the read-modify-write window: without the lock, processes overwrite each other
        await lock.confirm();
        await store.saveToken(counterToken(job.name, found.expiryTime + 1));
        intervals.push([start, preciseNow()]);
      },
      { leaseMs: job.leaseMs, waitMs: 60_000 },
    );
  }
  return { intervals };
}

/** The part of core's TokenManager the manager callers use. */
interface AccessTokenSource {
  getAccessToken(userName: string): Promise<string>;
}
type TokenManagerClass = new (options: { store: TokenStore; accountsUrl: string }) => AccessTokenSource;

/** Core's TokenManager, when this version of `@crm/core` has one. */
export function tokenManagerClass(): TokenManagerClass | null {
  const exported = (core as unknown as Record<string, unknown>).TokenManager;
  return typeof exported === 'function' ? (exported as TokenManagerClass) : null;
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export async function managerCallers(store: TokenStore, job: ManagerCallersJob): Promise<ManagerCallersResult> {
  const TokenManager = tokenManagerClass();
  if (!TokenManager) throw new Error('@crm/core has no TokenManager');
  const manager = new TokenManager({ store, accountsUrl: job.accountsUrl });
  const calls = await Promise.allSettled(Array.from({ length: job.callers }, () => manager.getAccessToken(job.name)));
  const accessTokenHashes: string[] = [];
  const errors: string[] = [];
  for (const call of calls) {
    if (call.status === 'fulfilled') accessTokenHashes.push(sha256(call.value));
    else errors.push(`${call.reason instanceof Error ? call.reason.name : typeof call.reason} ${errorCode(call.reason)}`);
  }
  return { accessTokenHashes, errors };
}
