import { type SpawnOptions, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const PACKAGE = join(__dirname, '..');

/** Workers run the built package, as a user's process would; a missing build is an error, not a skip. */
export function workerScript(name: string): string {
  if (!existsSync(join(PACKAGE, 'dist', 'index.js'))) {
    throw new Error('packages/store-sqlite/dist is missing: run `pnpm build` in packages/store-sqlite before these tests');
  }
  return join(PACKAGE, 'test', 'fixtures', name);
}

export interface Worker {
  /** Resolves on the worker's first output line (its "ready"). */
  ready: Promise<void>;
  /** Sends the start signal. */
  start(): void;
  /** Resolves with the worker's last output line, parsed; rejects when it exits non-zero. */
  result: Promise<unknown>;
}

/** Starts `node script ...args`; its stdout carries "ready" and then one JSON line. */
export function startWorker(script: string, args: string[], options: SpawnOptions = {}): Worker {
  const child = spawn(process.execPath, [script, ...args], { ...options, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    if (stdout.includes('\n')) markReady();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const result = new Promise<unknown>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      markReady();
      const lines = stdout.trim().split('\n');
      if (code !== 0) reject(new Error(`worker exited with ${code ?? signal}: ${stderr || stdout}`));
      else resolve(JSON.parse(lines[lines.length - 1] as string));
    });
  });
  return { ready, start: () => child.stdin?.write('go\n'), result };
}
