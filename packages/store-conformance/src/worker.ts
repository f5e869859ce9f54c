/**
 * A worker process of the `processes` group. The suite forks it, sends the options module and the storage
 * description, and this process loads the options as the CLI does, opens a store with `openShared`, waits
 * for `go`, does its job and reports over IPC. It closes its store and exits on its own.
 */
import type { TokenStore } from '@crm/core';
import { loadOptions } from './load-options.js';
import { describeError } from './outcome.js';
import { type FromWorker, findLoop, saveUsers, saveVersions, type ToWorker, type WorkerJob } from './worker-jobs.js';

function send(message: FromWorker): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) resolve();
    else process.send(message, () => resolve());
  });
}

let stopped = false;
let go: () => void = () => {};
const started = new Promise<void>((resolve) => {
  go = resolve;
});

async function work(module: string, description: unknown, job: WorkerJob): Promise<void> {
  let store: TokenStore | undefined;
  try {
    const options = await loadOptions(module);
    if (!options.openShared) throw new Error(`${module} has no openShared option`);
    store = await options.openShared(description);
    await send({ type: 'ready' });
    await started;
    const opened = store;
    const result =
      job.kind === 'save-users'
        ? await saveUsers(opened, job)
        : job.kind === 'save-versions'
          ? await saveVersions(opened, job)
          : await findLoop(opened, job, () => stopped);
    await send({ type: 'result', result });
  } catch (error) {
    await send({ type: 'failed', error: describeError(error) });
  } finally {
    await Promise.resolve(store?.close?.()).catch(() => {});
  }
  // A store that leaves a handle open must not keep this process alive: the suite waits for the exit.
  process.exit(0);
}

process.on('message', (message: ToWorker) => {
  if (message.type === 'start') void work(message.module, message.description, message.job);
  else if (message.type === 'go') go();
  else if (message.type === 'stop') stopped = true;
});
// The suite went away (killed, timed out): nothing is left to report to.
process.on('disconnect', () => process.exit(1));
