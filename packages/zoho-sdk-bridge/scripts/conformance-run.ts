/**
 * Runs the conformance suite on one store of test/conformance-options.ts and prints the report as JSON:
 * `tsx scripts/conformance-run.ts typescript-file`. A process of its own per store, because Zoho's DBStore
 * can throw inside a driver callback, a rejection nobody handles, which would end any process by default:
 * here they are counted and reported instead.
 */
import { fileURLToPath } from 'node:url';
import { type ConformanceReport, runConformance } from '@crm/store-conformance';
import { createConformanceOptions, STORE_KINDS, type StoreKind } from '../test/conformance-options.js';

export interface StoreRun {
  kind: StoreKind;
  report: ConformanceReport;
  /** Rejections nobody handled while the suite ran (Zoho's DBStore throws from driver callbacks). */
  unhandledRejections: number;
}

export const OPTIONS_MODULE = fileURLToPath(new URL('../test/conformance-options.ts', import.meta.url));

export async function runStore(kind: StoreKind, filter?: string): Promise<StoreRun> {
  let unhandledRejections = 0;
  const count = () => {
    unhandledRejections++;
  };
  process.on('unhandledRejection', count);
  try {
    const options = { ...createConformanceOptions(kind), module: OPTIONS_MODULE };
    if (filter !== undefined) options.filter = filter;
    const report = await runConformance(options);
    return { kind, report, unhandledRejections };
  } finally {
    process.off('unhandledRejection', count);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [kind, filter] = process.argv.slice(2);
  if (!(STORE_KINDS as readonly string[]).includes(kind ?? '')) {
    process.stderr.write(`usage: conformance-run.ts <${STORE_KINDS.join('|')}> [filter]\n`);
    process.exit(2);
  }
  const run = await runStore(kind as StoreKind, filter);
  process.stdout.write(`${JSON.stringify(run)}\n`);
  process.exit(0); // their stores may leave sockets behind; the report is out
}
