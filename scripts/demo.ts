/**
 * The main job: runs the conformance suite against every built-in store and prints one table. Each store is
 * checked the way a third-party author checks theirs: the published `crm-store-conformance` command, run on the
 * options module the store package's own tests use, in a process of its own.
 * Server stores use PostgreSQL, Redis and MariaDB on their usual local ports (or POSTGRES_URL, REDIS_URL,
 * MYSQL_URL); where one is not running, a throwaway instance is started from the installed server binaries.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ConformanceReport } from '@crm/store-conformance';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
/** The command as an installed package exposes it (its `bin`), and tsx to load TypeScript options modules. */
const conformanceCommand = join(dirname(require.resolve('@crm/store-conformance/package.json')), 'bin', 'crm-store-conformance.js');

interface Target {
  name: string;
  /** The options module, relative to the repository. */
  module: string;
  env?: Record<string, string>;
}

const targets: Target[] = [
  { name: 'MemoryTokenStore (reference)', module: 'scripts/memory-store-options.ts' },
  { name: 'SQLiteTokenStore', module: 'packages/store-sqlite/test/conformance-options.ts' },
  { name: 'FileTokenStore', module: 'packages/store-file/test/conformance-options.ts' },
  { name: 'PostgresTokenStore', module: 'packages/store-postgres/test/conformance-options.ts' },
  { name: 'RedisTokenStore', module: 'packages/store-redis/test/conformance-options.ts' },
  { name: 'RedisTokenStore (cluster)', module: 'packages/store-redis/test/conformance-options.ts', env: { CRM_REDIS_TARGET: 'cluster' } },
  { name: 'MySQLTokenStore (MariaDB)', module: 'packages/store-mysql/test/conformance-options.ts' },
];

/** Runs the command with `--json`; its progress lines (stderr) are counted, its report (stdout) parsed. */
function runSuite(target: Target): Promise<ConformanceReport> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', conformanceCommand, join(root, target.module), '--json'], {
      cwd: root,
      env: { ...process.env, ...target.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      process.stdout.write('.'.repeat((chunk.toString().match(/\n/g) ?? []).length));
    });
    child.on('error', reject);
    child.on('close', (code) => {
      try {
        resolve(JSON.parse(stdout) as ConformanceReport);
      } catch {
        reject(new Error(`the command exited with ${code} without a report: ${stderr.trim().split('\n').slice(-5).join(' | ')}`));
      }
    });
  });
}

interface Row {
  name: string;
  report: ConformanceReport | null;
  seconds: number;
  problem?: string;
}

async function main(): Promise<number> {
  const rows: Row[] = [];
  for (const target of targets) {
    const started = Date.now();
    process.stdout.write(`running the suite against ${target.name} `);
    try {
      const report = await runSuite(target);
      rows.push({ name: target.name, report, seconds: (Date.now() - started) / 1000 });
      console.log(` ${report.passed} passed, ${report.failed} failed`);
    } catch (error) {
      const problem = error instanceof Error ? error.message : String(error);
      rows.push({ name: target.name, report: null, seconds: (Date.now() - started) / 1000, problem });
      console.log(` could not run: ${problem}`);
    }
  }

  const header = ['store', 'passed', 'failed', 'skipped', 'seconds'];
  const table = rows.map((row) => [
    row.name,
    String(row.report?.passed ?? '-'),
    String(row.report?.failed ?? '-'),
    String(row.report?.skipped ?? '-'),
    row.seconds.toFixed(1),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...table.map((cells) => cells[column]!.length)));
  const line = (cells: string[]) =>
    cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ');
  console.log(`\nConformance of the built-in stores\n${line(header)}\n${widths.map((width) => '-'.repeat(width)).join('  ')}`);
  for (const cells of table) console.log(line(cells));

  for (const row of rows) {
    for (const result of row.report?.results ?? [])
      if (result.status === 'failed') console.log(`  ${row.name}: FAILED ${result.id}: ${result.error}`);
    if (row.report && row.report.skippedGroups.length > 0)
      for (const group of row.report.skippedGroups)
        console.log(`  ${row.name}: ${group} switched off (${row.report.skipReasons[group] ?? 'by its options'})`);
    if (row.problem) console.log(`  ${row.name}: ${row.problem}`);
  }
  const failed = rows.reduce((sum, row) => sum + (row.report?.failed ?? 1), 0);
  const passed = rows.reduce((sum, row) => sum + (row.report?.passed ?? 0), 0);
  console.log(`\n${passed} passed, ${failed} failed`);
  return failed > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
