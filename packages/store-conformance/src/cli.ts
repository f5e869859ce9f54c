#!/usr/bin/env node
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { formatReport } from './format.js';
import { runConformance } from './run.js';
import type { ConformanceOptions } from './types.js';

const USAGE = `Usage: crm-store-conformance <module> [--filter <text>] [--json]

Runs the @crm token store conformance suite against the store a module describes.
The module exports the options as its default export, as \`options\`, or as a function
(\`default\` or \`createConformanceOptions\`) returning them:
  { create(): TokenStore, destroy?(store), reopen?(store): TokenStore, skip?: string[] }
Exit code: 0 when every case passed, 1 when any failed, 2 on a usage or loading error.`;

async function loadOptions(modulePath: string): Promise<ConformanceOptions> {
  const loaded = (await import(pathToFileURL(resolve(modulePath)).href)) as Record<string, unknown>;
  let candidate = loaded.createConformanceOptions ?? loaded.options ?? loaded.default;
  // A CommonJS module imported from ESM arrives under `default`.
  if (candidate && typeof candidate === 'object' && !('create' in candidate)) {
    const nested = candidate as Record<string, unknown>;
    candidate = nested.createConformanceOptions ?? nested.options ?? nested.default ?? candidate;
  }
  if (typeof candidate === 'function') candidate = await (candidate as () => unknown)();
  if (!candidate || typeof (candidate as ConformanceOptions).create !== 'function') {
    throw new Error(`${modulePath} exports no conformance options with a create() function`);
  }
  return candidate as ConformanceOptions;
}

async function main(argv: string[]): Promise<number> {
  const modulePath = argv.find((arg, index) => !arg.startsWith('--') && argv[index - 1] !== '--filter');
  if (!modulePath || argv.includes('--help')) {
    console.error(USAGE);
    return 2;
  }
  const filterIndex = argv.indexOf('--filter');
  let options: ConformanceOptions;
  try {
    options = await loadOptions(modulePath);
  } catch (error) {
    console.error(`crm-store-conformance: cannot load ${modulePath}: ${error instanceof Error ? error.message : String(error)}`);
    return 2;
  }
  if (filterIndex >= 0) options = { ...options, filter: argv[filterIndex + 1] ?? '' };
  const report = await runConformance(options);
  console.log(argv.includes('--json') ? JSON.stringify(report, null, 2) : formatReport(report, `conformance: ${modulePath}`));
  return report.failed > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error);
    process.exitCode = 2;
  },
);
