/**
 * What the `processes` group's worker processes do, and the token versions they write. Shared by the worker
 * (which writes) and the cases (which check what was written).
 */
import { OAuthToken, type TokenStore, UserSignature } from '@crm/core';

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

export type WorkerJob = SaveUsersJob | SaveVersionsJob | FindLoopJob;

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

/** Messages between the suite and a worker, over the IPC channel of `child_process.fork`. */
export type ToWorker = { type: 'start'; module: string; description: unknown; job: WorkerJob } | { type: 'go' } | { type: 'stop' };
export type FromWorker = { type: 'ready' } | { type: 'result'; result: unknown } | { type: 'failed'; error: string };

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
