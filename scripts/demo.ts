/**
 * The main job: runs the conformance suite against every built-in store and prints one table.
 * Server stores use PostgreSQL, Redis and MariaDB on their usual local ports (or POSTGRES_URL, REDIS_URL,
 * MYSQL_URL); where one is not running, a throwaway instance is started from the installed server binaries.
 */
import { MemoryTokenStore, type TokenStore } from '@crm/core';
import { type ConformanceOptions, type ConformanceReport, runConformance } from '@crm/store-conformance';

interface Target {
  name: string;
  options: () => Promise<ConformanceOptions<TokenStore>>;
}

const targets: Target[] = [
  { name: 'MemoryTokenStore (reference)', options: async () => ({ create: () => new MemoryTokenStore() }) },
  {
    name: 'SQLiteTokenStore',
    options: async () => (await import('../packages/store-sqlite/test/conformance-options.js')).createConformanceOptions(),
  },
  {
    name: 'FileTokenStore',
    options: async () => (await import('../packages/store-file/test/conformance-options.js')).createConformanceOptions(),
  },
  {
    name: 'PostgresTokenStore',
    options: async () => (await import('../packages/store-postgres/test/conformance-options.js')).createConformanceOptions(),
  },
  {
    name: 'RedisTokenStore',
    options: async () => (await import('../packages/store-redis/test/conformance-options.js')).createConformanceOptions('standalone'),
  },
  {
    name: 'RedisTokenStore (cluster)',
    options: async () => (await import('../packages/store-redis/test/conformance-options.js')).createConformanceOptions('cluster'),
  },
  {
    name: 'MySQLTokenStore (MariaDB)',
    options: async () => (await import('../packages/store-mysql/test/conformance-options.js')).createConformanceOptions(),
  },
];

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
    process.stdout.write(`running the suite against ${target.name} ... `);
    try {
      const report = await runConformance(await target.options());
      rows.push({ name: target.name, report, seconds: (Date.now() - started) / 1000 });
      console.log(`${report.passed} passed, ${report.failed} failed`);
    } catch (error) {
      const problem = error instanceof Error ? error.message : String(error);
      rows.push({ name: target.name, report: null, seconds: (Date.now() - started) / 1000, problem });
      console.log(`could not run: ${problem}`);
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
      console.log(`  ${row.name}: switched off: ${row.report.skippedGroups.join(', ')}`);
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
