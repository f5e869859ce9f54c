import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { StoreRun } from '../../scripts/conformance-run.js';
import type { StoreKind } from '../conformance-options.js';

/** Runs the suite on one store in a child process (scripts/conformance-run.ts says why) and reads its report. */
export function runStoreInChild(kind: StoreKind): Promise<StoreRun> {
  const script = fileURLToPath(new URL('../../scripts/conformance-run.ts', import.meta.url));
  const tsx = createRequire(script).resolve('tsx');
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', tsx, script, kind], { maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`the ${kind} run failed: ${error.message}\n${stderr.slice(-2000)}`));
      else resolve(JSON.parse(stdout) as StoreRun);
    });
  });
}
