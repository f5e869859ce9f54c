#!/usr/bin/env node
import { formatResult, reportFooter, summaryLine } from './format.js';
import { loadOptions } from './load-options.js';
import { checkOptions, runConformance, selectedCases, skippedGroups } from './run.js';
import { CONFORMANCE_GROUPS, type ConformanceGroup, type ConformanceOptions } from './types.js';

const USAGE = `Usage: crm-store-conformance <module> [--filter <text>] [--skip <group,...>] [--json]

Runs the @crm token store conformance suite against the store a module describes.
The module exports the options as its default export, as \`options\`, or as a function
(\`default\` or \`createConformanceOptions\`) returning them:
  { create(): TokenStore, destroy?(store), reopen?(store), skip?: string[], setup?(), teardown?(),
    valueLimits?, injectFault?(store), share?(store), openShared?(description), sharedAcrossProcesses? }
A TypeScript module (.ts, .mts, .cts) needs a loader: run \`node --import tsx\` on the command, and have
tsx installed where the module is, for the worker processes of the processes group.

  --filter <text>   only the cases whose id or title contains the text
  --skip <groups>   switch off these groups too (comma-separated)
  --json            print the report as JSON on stdout at the end; progress lines go to stderr
  --help            print this help

Each case's line is printed as soon as it finishes; the summary comes last.
Groups: ${CONFORMANCE_GROUPS.join(', ')}
Exit code: 0 when every case passed, 1 when any failed (or teardown() threw),
           2 on a usage error (unknown flag or group, a filter that matches no case) or a loading error.`;

class UsageError extends Error {}

interface Arguments {
  module: string;
  filter?: string;
  skip: ConformanceGroup[];
  json: boolean;
}

function checkGroups(groups: readonly string[], where: string): ConformanceGroup[] {
  const unknown = groups.filter((group) => !(CONFORMANCE_GROUPS as readonly string[]).includes(group));
  if (unknown.length > 0) {
    throw new UsageError(
      `unknown group${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} in ${where}; the groups are: ${CONFORMANCE_GROUPS.join(', ')}`,
    );
  }
  return groups as ConformanceGroup[];
}

function parseArguments(argv: string[]): Arguments | 'help' {
  // --help anywhere but as the value of --filter or --skip.
  if (argv.some((arg, index) => (arg === '--help' || arg === '-h') && argv[index - 1] !== '--filter' && argv[index - 1] !== '--skip'))
    return 'help';
  const parsed: Partial<Arguments> & { skip: ConformanceGroup[] } = { skip: [], json: false };
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index]!;
    if (arg === '--json') parsed.json = true;
    else if (arg === '--filter' || arg === '--skip') {
      const value = argv[++index];
      if (value === undefined || value.startsWith('--')) throw new UsageError(`${arg} needs a value`);
      if (arg === '--filter') parsed.filter = value;
      else parsed.skip.push(...checkGroups(value.split(',').filter(Boolean), '--skip'));
    } else if (arg.startsWith('-')) throw new UsageError(`unknown option ${arg}`);
    else if (parsed.module === undefined) parsed.module = arg;
    else throw new UsageError(`one module only, got ${parsed.module} and ${arg}`);
  }
  if (parsed.module === undefined) throw new UsageError('the options module is missing');
  return parsed as Arguments;
}

/** Counts of the kinds of handles keeping the event loop alive (sockets, servers, child processes...). */
function activeResources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const kind of process.getActiveResourcesInfo()) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  return counts;
}

/** Handles open now that were not open before the run, apart from timers (ours are cleared, a store's show as Timeout too). */
function leftOpen(before: Map<string, number>): string[] {
  const left: string[] = [];
  for (const [kind, count] of activeResources()) {
    const extra = count - (before.get(kind) ?? 0);
    if (extra > 0 && kind !== 'TTYWrap') left.push(`${kind} x${extra}`);
  }
  return left;
}

async function main(argv: string[]): Promise<number> {
  let args: Arguments;
  try {
    const parsed = parseArguments(argv);
    if (parsed === 'help') {
      console.log(USAGE);
      return 0;
    }
    args = parsed;
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`crm-store-conformance: ${error.message}\n\n${USAGE}`);
    return 2;
  }
  // stdout and stderr open their handles (a pipe, a terminal) on first use: open them before counting.
  process.stdout.write('');
  process.stderr.write('');
  const before = activeResources();
  let options: ConformanceOptions;
  try {
    options = await loadOptions(args.module);
  } catch (error) {
    console.error(`crm-store-conformance: cannot load ${args.module}: ${error instanceof Error ? error.message : String(error)}`);
    return 2;
  }
  try {
    checkOptions(options);
    options = { ...options, skip: [...new Set([...(options.skip ?? []), ...args.skip])] };
    if (args.filter !== undefined) options.filter = args.filter;
    if (selectedCases(options).length === 0)
      throw new UsageError(`--filter ${args.filter} matches no case; the groups are: ${CONFORMANCE_GROUPS.join(', ')}`);
    const off = new Set(skippedGroups(options));
    if (selectedCases(options).every((item) => off.has(item.group))) {
      throw new UsageError('every selected case is in a switched-off group: nothing would run');
    }
  } catch (error) {
    console.error(`crm-store-conformance: ${error instanceof Error ? error.message : String(error)}`);
    return 2;
  }
  // Lines stream as cases finish: to stdout for the table, to stderr when stdout carries the JSON report.
  const progress = args.json ? (line: string) => console.error(line) : (line: string) => console.log(line);
  const idWidth = Math.max(6, ...selectedCases(options).map((item) => item.id.length));
  progress(`conformance: ${args.module}`);
  const report = await runConformance(options, (result) => progress(formatResult(result, idWidth)));
  if (args.json) {
    console.log(JSON.stringify(report, null, 2));
    console.error(summaryLine(report));
  } else {
    for (const line of reportFooter(report)) console.log(line);
  }
  // Let closed sockets finish closing before counting what is still open.
  await new Promise((resolve) => setTimeout(resolve, 100));
  const left = leftOpen(before);
  if (left.length > 0) {
    console.error(
      `crm-store-conformance: warning: the store left handles open after every store was closed (${left.join(', ')}); ` +
        'a program using it would not exit on its own',
    );
  }
  return report.failed > 0 || report.teardownError ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(2);
  },
);
