import { type ChildProcess, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { FromWorker, ToWorker, WorkerJob } from './worker-jobs.js';

const TYPESCRIPT = /\.[cm]?tsx?$/;

/** The worker script next to this file: `worker.js` in the published package, `worker.ts` when run from source. */
function workerScript(): string {
  // tsup's shims give the ESM build a __dirname; only source run as ESM (tsx) lacks one.
  if (typeof __dirname !== 'string') throw new Error('the processes group runs from the built package (dist), not from ESM source');
  for (const name of ['worker.js', 'worker.cjs', 'worker.ts']) {
    const path = join(__dirname, name);
    if (existsSync(path)) return path;
  }
  throw new Error(`no worker script next to ${__dirname}`);
}

/** tsx's loader, resolved from the options module's folder first (its project installs it), then from ours. */
function tsxLoader(module: string): string {
  for (const from of [module, __filename]) {
    try {
      return pathToFileURL(createRequire(from).resolve('tsx')).href;
    } catch {}
  }
  throw new Error(`${module} is TypeScript: install tsx in its project (npm install --save-dev tsx) so worker processes can load it`);
}

export interface Worker {
  /** Resolves once the worker opened its store. */
  ready: Promise<void>;
  /** Resolves with the job's result; rejects with the worker's error or an early exit. */
  result: Promise<unknown>;
  /** The next progress report of the job, in order; rejects like `result` when the worker fails or exits first. */
  progress(): Promise<unknown>;
  /** The worker's process id. */
  pid: number;
  /** Sends a signal to the worker process (SIGKILL, SIGSTOP, SIGCONT); nothing once it has exited. */
  signal(name: NodeJS.Signals): void;
  send(message: ToWorker): void;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
  kill(): void;
}

/**
 * Forks a worker process that loads `module` (with tsx when it is TypeScript), opens a store over the storage
 * `description` names, and does `job`. The worker is killed when `signal` aborts (the case ended or timed out).
 */
export function startWorker(module: string, description: unknown, job: WorkerJob, signal: AbortSignal): Worker {
  const script = workerScript();
  const execArgv = TYPESCRIPT.test(module) || TYPESCRIPT.test(script) ? ['--import', tsxLoader(module)] : [];
  const child: ChildProcess = fork(script, [], { execArgv, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-6000);
  });
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  signal.addEventListener('abort', kill, { once: true });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => signal.removeEventListener('abort', kill));
  let onReady: () => void = () => {};
  let onResult: (value: unknown) => void = () => {};
  let onFailure: (error: Error) => void = () => {};
  const ready = new Promise<void>((resolve, reject) => {
    onReady = resolve;
    onFailure = reject;
  });
  const result = new Promise<unknown>((resolve, reject) => {
    onResult = resolve;
    const previous = onFailure;
    onFailure = (error) => {
      previous(error);
      reject(error);
    };
  });
  // Whoever awaits only one of them must not see an unhandled rejection from the other.
  ready.catch(() => {});
  result.catch(() => {});
  // Progress reports wait in `reports` until asked for; askers wait in `askers` until a report comes.
  const reports: unknown[] = [];
  const askers: Array<{ resolve: (progress: unknown) => void; reject: (error: Error) => void }> = [];
  let failure: Error | null = null;
  const previousFailure = onFailure;
  onFailure = (error) => {
    failure ??= error;
    for (const asker of askers.splice(0)) asker.reject(error);
    previousFailure(error);
  };
  child.on('message', (message: FromWorker) => {
    if (message.type === 'progress') {
      const asker = askers.shift();
      if (asker) asker.resolve(message.progress);
      else reports.push(message.progress);
    } else if (message.type === 'ready') onReady();
    else if (message.type === 'result') onResult(message.result);
    else if (message.type === 'failed') onFailure(new Error(`worker process ${job.kind} failed: ${message.error}`));
  });
  // A worker's exit is told on 'exit', but its last reports may still be unread in the channel then: Node reaps
  // every exited child when one exit is signalled, so a worker that reported and exited while another child's
  // exit was pending is told as exited before its report is read. Only 'close' (the channel and stderr have
  // ended, so every report has been read) proves it exited without reporting. A descendant holding those
  // pipes open must not stall the case: ten seconds after the exit, it counts as closed.
  let exitedAs = '';
  const exitedWithoutReport = () => {
    const last = stderr.trim().split('\n').slice(-12).join(' | ');
    onFailure(new Error(`worker process ${job.kind} exited (${exitedAs}) before reporting${last ? `: ${last}` : ''}`));
  };
  child.once('exit', (code, killedBy) => {
    exitedAs = killedBy ?? `code ${code}`;
    setTimeout(exitedWithoutReport, 10_000).unref();
  });
  child.once('close', exitedWithoutReport);
  child.once('error', (error) => onFailure(error));
  child.send({ type: 'start', module, description, job } satisfies ToWorker);
  return {
    ready,
    result,
    exited,
    kill,
    pid: child.pid as number,
    progress: () =>
      reports.length > 0
        ? Promise.resolve(reports.shift())
        : failure
          ? Promise.reject(failure)
          : new Promise((resolve, reject) => askers.push({ resolve, reject })),
    signal: (name) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(name);
    },
    send: (message) => {
      if (child.connected) child.send(message);
    },
  };
}
