/**
 * `crm-tokens conformance URL|MODULE` runs @crm/store-conformance on a store URL (every case on fresh storage
 * of the URL's kind) or on a module exporting conformance options, as `crm-store-conformance` does;
 * `--all` runs it on every built-in store and prints one table.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { redactUrl, TokenStoreError } from '@crm/core';
import {
  CONFORMANCE_GROUPS,
  type ConformanceGroup,
  type ConformanceOptions,
  type ConformanceReport,
  checkOptions,
  formatResult,
  loadOptions,
  reportFooter,
  runConformance,
  selectedCases,
  skippedGroups,
  summaryLine,
} from '@crm/store-conformance';
import type { Command } from 'commander';
import { CONFORMANCE_URL_ENV, looksLikeStoreUrl, urlConformanceOptions } from '../conformance-url-options.js';
import { EXIT } from '../output.js';

interface ConformanceFlags {
  filter?: string;
  skip?: string;
  json?: boolean;
  all?: boolean;
}

const usage = (message: string) => TokenStoreError.invalidArgument({ store: 'crm-tokens', operation: 'open' }, message);

/** The built-in stores `--all` runs, on the servers' usual local URLs unless the environment names others. */
function builtInTargets(): { name: string; url: string; env?: string }[] {
  return [
    { name: 'MemoryTokenStore (reference)', url: 'memory:' },
    { name: 'SQLiteTokenStore', url: 'sqlite:tokens.db' },
    { name: 'FileTokenStore', url: 'file:sdk_tokens.txt' },
    { name: 'PostgresTokenStore', url: process.env.POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/test', env: 'POSTGRES_URL' },
    { name: 'RedisTokenStore', url: process.env.REDIS_URL || 'redis://127.0.0.1:6379', env: 'REDIS_URL' },
    { name: 'MySQLTokenStore', url: process.env.MYSQL_URL || 'mysql://root@127.0.0.1:3306/test', env: 'MYSQL_URL' },
  ];
}

function checkSkip(text: string | undefined): ConformanceGroup[] {
  const groups = (text ?? '').split(',').filter(Boolean);
  const unknown = groups.filter((group) => !(CONFORMANCE_GROUPS as readonly string[]).includes(group));
  if (unknown.length > 0) throw usage(`unknown group ${unknown.join(', ')} in --skip; the groups are: ${CONFORMANCE_GROUPS.join(', ')}`);
  return groups as ConformanceGroup[];
}

/** The options with --filter and --skip applied; a selection that runs nothing is a usage error. */
function narrow(options: ConformanceOptions, flags: ConformanceFlags): ConformanceOptions {
  try {
    checkOptions(options);
  } catch (error) {
    throw usage(error instanceof Error ? error.message : String(error));
  }
  const narrowed: ConformanceOptions = { ...options, skip: [...new Set([...(options.skip ?? []), ...checkSkip(flags.skip)])] };
  if (flags.filter !== undefined) narrowed.filter = flags.filter;
  const cases = selectedCases(narrowed);
  if (cases.length === 0) throw usage(`--filter ${flags.filter} matches no case; the groups are: ${CONFORMANCE_GROUPS.join(', ')}`);
  const off = new Set(skippedGroups(narrowed));
  if (cases.every((item) => off.has(item.group))) throw usage('every selected case is in a switched-off group: nothing would run');
  return narrowed;
}

/**
 * Opens one store as a case would and reads from it, so a bad URL (exit 2) or an unreachable server (exit 3)
 * is reported once, before the cases, instead of as every case failing.
 */
async function preflight(options: ConformanceOptions): Promise<void> {
  const store = await options.create();
  try {
    await store.getTokens();
  } finally {
    await store.close?.().catch(() => {});
    await Promise.resolve(options.destroy?.(store)).catch(() => {});
  }
}

/** Set in the command's own child process that runs a TypeScript options module with tsx loaded. */
const TSX_LOADED_ENV = 'CRM_TOKENS_TSX_LOADED';

/**
 * A TypeScript options module needs tsx: the command runs itself again with `--import tsx`, tsx resolved from
 * the module's own project (as the suite's worker processes find it), and exits with that run's code.
 */
function runWithTypeScript(modulePath: string): Promise<number> | null {
  if (!/\.[cm]?tsx?$/.test(modulePath) || process.env[TSX_LOADED_ENV] === '1') return null;
  let loader: string;
  try {
    loader = pathToFileURL(createRequire(modulePath).resolve('tsx')).href;
  } catch {
    throw usage(`${modulePath} is TypeScript: install tsx in its project (npm install --save-dev tsx), or run a .js or .mjs module`);
  }
  const child = spawn(process.execPath, [...process.execArgv, '--import', loader, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, [TSX_LOADED_ENV]: '1' },
  });
  return new Promise((done) => child.on('close', (code) => done(code ?? EXIT.problem)));
}

async function loadModuleOptions(target: string): Promise<ConformanceOptions> {
  const modulePath = resolve(target);
  if (!existsSync(modulePath)) throw usage(`${target} is neither a store URL nor an existing module file`);
  try {
    return await loadOptions(modulePath);
  } catch (error) {
    throw usage(`cannot load ${target}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Runs the suite on one target and prints its rows as they finish, then the footer (or the JSON report). */
async function runOne(target: string, flags: ConformanceFlags): Promise<number> {
  let options: ConformanceOptions;
  let shown: string;
  if (looksLikeStoreUrl(target)) {
    options = narrow(urlConformanceOptions(target), flags);
    shown = redactUrl(target);
    process.env[CONFORMANCE_URL_ENV] = target;
    await preflight(options);
  } else {
    const typescript = runWithTypeScript(resolve(target));
    if (typescript !== null) return typescript;
    options = narrow(await loadModuleOptions(target), flags);
    shown = target;
  }
  const progress = flags.json ? (line: string) => console.error(line) : (line: string) => console.log(line);
  const idWidth = Math.max(6, ...selectedCases(options).map((item) => item.id.length));
  progress(`conformance: ${shown}`);
  const report = await runConformance(options, (result) => progress(formatResult(result, idWidth)));
  if (flags.json) {
    console.log(JSON.stringify(report, null, 2));
    console.error(summaryLine(report));
  } else {
    for (const line of reportFooter(report)) console.log(line);
  }
  return report.failed > 0 || report.teardownError ? EXIT.problem : EXIT.ok;
}

interface Row {
  name: string;
  url: string;
  seconds: number;
  report?: ConformanceReport;
  problem?: string;
}

/** Every built-in store, one after another, as one table; an unreachable server is a row saying so. */
async function runAll(flags: ConformanceFlags): Promise<number> {
  const rows: Row[] = [];
  const progress = flags.json ? (line: string) => console.error(line) : (line: string) => console.log(line);
  for (const target of builtInTargets()) {
    const started = Date.now();
    const row: Row = { name: target.name, url: redactUrl(target.url), seconds: 0 };
    rows.push(row);
    try {
      const options = narrow(urlConformanceOptions(target.url), flags);
      process.env[CONFORMANCE_URL_ENV] = target.url;
      try {
        await preflight(options);
      } catch (error) {
        if (TokenStoreError.is(error) && error.code !== 'INVALID_ARGUMENT') {
          row.problem = `not reachable at ${row.url}${target.env ? `: start it, or set ${target.env} to its URL` : ''} (${error.message})`;
          continue;
        }
        throw error;
      }
      row.report = await runConformance(options);
      progress(`${target.name}: ${summaryLine(row.report)}`);
    } catch (error) {
      if (TokenStoreError.is(error) && error.code === 'INVALID_ARGUMENT') throw error;
      row.problem = `could not run: ${error instanceof Error ? error.message : String(error)}`;
    } finally {
      row.seconds = (Date.now() - started) / 1000;
      if (row.problem) progress(`${target.name}: ${row.problem}`);
    }
  }
  const failed = rows.reduce((sum, row) => sum + (row.report?.failed ?? 0), 0);
  const passed = rows.reduce((sum, row) => sum + (row.report?.passed ?? 0), 0);
  if (flags.json) {
    console.log(JSON.stringify(rows, null, 2));
  } else {
    const header = ['store', 'passed', 'failed', 'skipped', 'seconds'];
    const cells = rows.map((row) => [
      row.name,
      String(row.report?.passed ?? '-'),
      String(row.report?.failed ?? '-'),
      String(row.report?.skipped ?? '-'),
      row.seconds.toFixed(1),
    ]);
    const widths = header.map((title, column) => Math.max(title.length, ...cells.map((line) => line[column]!.length)));
    const line = (values: string[]) =>
      values.map((value, column) => (column === 0 ? value.padEnd(widths[column]!) : value.padStart(widths[column]!))).join('  ');
    console.log(`\nConformance of the built-in stores\n${line(header)}\n${widths.map((width) => '-'.repeat(width)).join('  ')}`);
    for (const values of cells) console.log(line(values));
    for (const row of rows) {
      for (const result of row.report?.results ?? [])
        if (result.status === 'failed') console.log(`  ${row.name}: FAILED ${result.id}: ${result.error}`);
      for (const group of row.report?.skippedGroups ?? [])
        console.log(`  ${row.name}: ${group} switched off (${row.report?.skipReasons[group] ?? 'by its options'})`);
      if (row.problem) console.log(`  ${row.name}: ${row.problem}`);
    }
    console.log(`\n${passed} passed, ${failed} failed`);
  }
  if (failed > 0) return EXIT.problem;
  return rows.some((row) => row.problem) ? EXIT.unavailable : EXIT.ok;
}

export function registerConformance(program: Command): void {
  program
    .command('conformance')
    .description('Run the @crm/store-conformance suite on a store URL or on a module exporting conformance options')
    .argument('[target]', 'a store URL (each case runs on fresh storage of its kind) or the path of an options module')
    .option('--filter <text>', 'only the cases whose id or title contains the text')
    .option('--skip <groups>', 'switch off these groups too (comma-separated)')
    .option('--json', 'print the report as JSON on stdout; the rows go to stderr')
    .option('--all', 'run the suite on every built-in store and print one table')
    .addHelpText(
      'after',
      `
A store URL runs every case on fresh storage of its kind; what the URL names is never touched:
  sqlite:, file:      a temporary file per case (sqlite::memory: and memory: stay in this process)
  postgres://, mysql://  a random table per case in the URL's schema or database, dropped afterwards
  redis://, rediss://    a random key prefix per case (under ?prefix= when given), removed afterwards
The processes and locking groups start worker processes that open the same storage. The faults group needs
a way to make the backend fail, which a URL does not give: it is switched off for URLs.

A module exports the options as crm-store-conformance takes them (default export, \`options\`, or a function
\`createConformanceOptions\`); a TypeScript module needs tsx installed in its project.

--all runs memory, SQLite and the CSV file in temporary folders, and PostgreSQL, Redis and MySQL on their
usual local URLs or on POSTGRES_URL, REDIS_URL and MYSQL_URL. It exits 1 when a case failed, 3 when no case
failed but a server could not be reached.`,
    )
    .action(async (target: string | undefined, flags: ConformanceFlags) => {
      if (flags.all && target !== undefined) throw usage('give a store URL or module, or --all, not both');
      if (!flags.all && target === undefined) throw usage('give a store URL or module to check, or --all');
      const code = flags.all ? await runAll(flags) : await runOne(target as string, flags);
      process.exit(code);
    });
}
