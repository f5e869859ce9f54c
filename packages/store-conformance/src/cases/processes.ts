import { OAuthToken, UserSignature } from '@crm/core';
import { startWorker, type Worker } from '../spawn-worker.js';
import type { CaseContext } from '../types.js';
import { type FindLoopResult, mixedFields, type SaveUsersResult, version, type WorkerJob, workerUser } from '../worker-jobs.js';
import { assert, group } from './support.js';

const WORKERS = 4;
const USERS_PER_WORKER = 25;
const SHARED_UPDATES = 5;
const IN_FLIGHT = 4;
const VERSIONS = 60;

/** Starts one worker per job over this case's storage, waits until all opened their stores, then lets them go. */
async function startAll(context: CaseContext, jobs: WorkerJob[]): Promise<Worker[]> {
  const module = context.options.module as string;
  const description = JSON.parse(JSON.stringify(await context.share())) as unknown;
  const workers = jobs.map((job) => startWorker(module, description, job, context.signal));
  // Process start-up (and tsx) takes a while: the race starts only once every worker is ready.
  await Promise.all(workers.map((worker) => worker.ready));
  for (const worker of workers) worker.send({ type: 'go' });
  return workers;
}

export const processCases = group('processes', [
  {
    id: 'parallel-saves',
    title: `${WORKERS} processes each save ${USERS_PER_WORKER} new users and update one shared user, ${IN_FLIGHT} saves in flight each: nothing lost, nothing doubled`,
    async run(context) {
      const tag = context.unique('proc');
      const sharedName = `${tag}-shared`;
      const jobs: WorkerJob[] = Array.from({ length: WORKERS }, (_, worker) => ({
        kind: 'save-users',
        tag,
        worker,
        count: USERS_PER_WORKER,
        sharedName,
        updates: SHARED_UPDATES,
        inFlight: IN_FLIGHT,
      }));
      const workers = await startAll(context, jobs);
      const results = (await Promise.all(workers.map((worker) => worker.result))) as SaveUsersResult[];
      await Promise.all(workers.map((worker) => worker.exited));
      const stored = await context.store.getTokens();
      const problems: string[] = [];
      if (stored.length !== WORKERS * USERS_PER_WORKER + 1) {
        problems.push(`expected ${WORKERS * USERS_PER_WORKER + 1} tokens, found ${stored.length}`);
      }
      const ids = new Set(stored.map((token) => token.id));
      if (ids.size !== stored.length) problems.push(`${stored.length - ids.size} stored ids are duplicates`);
      const byName = new Map<string, number>();
      for (const token of stored) byName.set(token.userName ?? '', (byName.get(token.userName ?? '') ?? 0) + 1);
      const doubled = [...byName.values()].filter((count) => count > 1).length;
      if (doubled > 0) problems.push(`${doubled} user names are stored more than once`);
      let lost = 0;
      for (const [worker, result] of results.entries()) {
        for (let n = 0; n < USERS_PER_WORKER; n++) {
          const expected = workerUser({ ...(jobs[worker] as Extract<WorkerJob, { kind: 'save-users' }>) }, n);
          if (!stored.some((token) => token.userName === expected.userName && token.accessToken === expected.accessToken)) lost++;
        }
        if (result.ids.some((id) => !ids.has(id))) problems.push(`worker ${worker} was given ids that are not stored`);
      }
      if (lost > 0) problems.push(`${lost} saved users are missing or changed`);
      const shared = stored.filter((token) => token.userName === sharedName);
      if (shared.length !== 1) problems.push(`the shared user is stored ${shared.length} times`);
      else {
        const wrong = mixedFields(sharedName, shared[0]!);
        if (wrong.length > 0) problems.push(`the shared user mixes versions (${wrong.join(', ')})`);
        const sharedIds = new Set(results.flatMap((result) => result.sharedIds));
        if (sharedIds.size !== 1 || !sharedIds.has(shared[0]!.id as string))
          problems.push('the shared user saves wrote back different ids');
      }
      assert.ok(problems.length === 0, `after saves from ${WORKERS} processes: ${problems.join('; ')}`);
    },
  },
  {
    id: 'find-racing-saves',
    title: 'a find in one process, racing complete saves of one user in another, never sees a mix and ends on the last version',
    async run(context) {
      const name = context.unique('proc-racy');
      await context.store.saveToken(version(name, 0));
      const [saver, finder] = await startAll(context, [
        { kind: 'save-versions', name, first: 1, last: VERSIONS },
        { kind: 'find-loop', name },
      ]);
      await saver!.result;
      finder!.send({ type: 'stop' });
      const found = (await finder!.result) as FindLoopResult;
      await Promise.all([saver!.exited, finder!.exited]);
      assert.ok(found.samples > 0, 'the finding process must have sampled while the saves ran');
      assert.ok(
        found.mixes.length === 0,
        `${found.mixes.length} kinds of bad samples out of ${found.samples} finds: ${found.mixes.join('; ')}`,
      );
      assert.equal(found.finalVersion, VERSIONS, 'after every save, the other process must find the last saved version');
      const stored = await context.store.findToken(new OAuthToken({ userSignature: new UserSignature(name) }));
      assert.equal(stored?.expiryTime, VERSIONS, 'the store of the suite must read the last saved version');
      assert.equal((await context.store.getTokens()).length, 1, 'one user must stay one token');
    },
  },
]);
