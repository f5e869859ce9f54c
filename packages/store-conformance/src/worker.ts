/**
 * A worker process of the `processes` and `locking` groups. The suite forks it, sends the options module and the storage
 * description, and this process loads the options as the CLI does, opens a store with `openShared`, waits
 * for `go`, does its job (reporting progress on the way, for jobs that have any) and reports over IPC. It closes its store and exits on its own.
 */
import type { TokenStore } from '@crm/core';
import { loadOptions } from './load-options.js';
import { describeError } from './outcome.js';
import {
  counterLoop,
  type FromWorker,
  findLoop,
  holdLock,
  type JobControl,
  managerCallers,
  saveUsers,
  saveVersions,
  type ToWorker,
  type WorkerJob,
} from './worker-jobs.js';

/** Set when a report could not be sent: the process then exits 1, so the suite never reads a silent exit as done. */
let reportLost = false;

function send(message: FromWorker): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) resolve();
    else
      process.send(message, (error: Error | null) => {
        if (error) {
          reportLost = true;
          process.stderr.write(`could not send the ${message.type} report: ${describeError(error)}\n`);
        }
        resolve();
      });
  });
}

let stopped = false;
let go: () => void = () => {};
const started = new Promise<void>((resolve) => {
  go = resolve;
});
let onStop: () => void = () => {};
const control: JobControl = {
  report: (progress) => send({ type: 'progress', progress }),
  stopped: () => stopped,
  stop: new Promise<void>((resolve) => {
    onStop = resolve;
  }),
};

function runJob(store: TokenStore, job: WorkerJob): Promise<unknown> {
  switch (job.kind) {
    case 'save-users':
      return saveUsers(store, job);
    case 'save-versions':
      return saveVersions(store, job);
    case 'find-loop':
      return findLoop(store, job, control.stopped);
    case 'hold-lock':
      return holdLock(store, job, control);
    case 'counter-loop':
      return counterLoop(store, job);
    case 'manager-callers':
      return managerCallers(store, job);
  }
}

async function work(module: string, description: unknown, job: WorkerJob): Promise<void> {
  let store: TokenStore | undefined;
  try {
    const options = await loadOptions(module);
    if (!options.openShared) throw new Error(`${module} has no openShared option`);
    store = await options.openShared(description);
    await send({ type: 'ready' });
    await started;
    const result = await runJob(store, job);
    await send({ type: 'result', result });
  } catch (error) {
    await send({ type: 'failed', error: describeError(error) });
  } finally {
    await Promise.resolve(store?.close?.()).catch(() => {});
  }
  // A store that leaves a handle open must not keep this process alive: the suite waits for the exit.
  process.exit(reportLost ? 1 : 0);
}

process.on('message', (message: ToWorker) => {
  if (message.type === 'start') void work(message.module, message.description, message.job);
  else if (message.type === 'go') go();
  else if (message.type === 'stop') {
    stopped = true;
    onStop();
  }
});
// The suite went away (killed, timed out): nothing is left to report to.
process.on('disconnect', () => process.exit(1));
// An error nobody caught (a driver's 'error' event without a listener, a rejected promise nobody awaited) is a
// defect of the store under test: report it whole, so the case says what it was, then exit.
function crashed(error: unknown): void {
  void send({ type: 'failed', error: `uncaught in the worker process: ${describeError(error)}` }).finally(() => process.exit(1));
}
process.on('uncaughtException', crashed);
process.on('unhandledRejection', crashed);
