/**
 * The command as users run it (the built dist/cli.js, so build first), in a process of its own: rows,
 * exit codes, usage errors, the open-handle warning, and the processes group with `module` set by the command.
 * tsx is loaded only for the TypeScript options module of the last test.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const cli = join(__dirname, '../dist/cli.js');
const fixtures = join(__dirname, 'fixtures');
const tsx = pathToFileURL(require.resolve('tsx')).href;

function run(...args: string[]) {
  // A command that does not exit on its own fails here (spawnSync kills it) instead of hanging the tests.
  const result = spawnSync(process.execPath, ['--import', tsx, cli, ...args], { encoding: 'utf8', timeout: 120000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, signal: result.signal };
}

test('--help prints the usage with the exit codes on stdout and exits 0', () => {
  const result = run('--help');
  expect(result.status).toBe(0);
  expect(result.stdout).toMatch(/^Usage: crm-store-conformance <module> \[--filter <text>\] \[--skip <group,...>\] \[--json\]/);
  expect(result.stdout).toContain('Exit code: 0 when every case passed');
});

test('a passing run prints a row per case, the reasons for what is off, the summary, and exits 0', () => {
  const result = run(join(fixtures, 'cli/memory.mjs'), '--filter', 'merge/');
  expect(result.status).toBe(0);
  expect(result.stdout).toMatch(/^PASSED\s+merge\/find-returns-same-object\s+\d+ ms$/m);
  expect(result.stdout).toContain('processes (store declares sharedAcrossProcesses: false)');
  expect(result.stdout).toMatch(/^5 passed, 0 failed, 0 skipped$/m);
  // stdout is a pipe here, as in CI: the command's own pipe is no handle the store left open.
  expect(result.stderr).not.toContain('warning');
});

test('a failing store exits 1 and its TypeError shows with message and stack frames', () => {
  const result = run(join(fixtures, 'cli/broken.mjs'), '--filter', 'delete/empty-store');
  expect(result.status).toBe(1);
  expect(result.stdout).toMatch(/^FAILED\s+delete\/empty-store\s+\d+ ms {2}TypeError: rows is not iterable\n\s+at .*broken\.mjs/m);
});

test('--json prints the report on stdout and streams the rows on stderr', () => {
  const result = run(join(fixtures, 'cli/memory.mjs'), '--filter', 'upsert/', '--skip', 'concurrency,bad-input', '--json');
  expect(result.status).toBe(0);
  const report = JSON.parse(result.stdout);
  expect(report.failed).toBe(0);
  expect(report.skippedGroups).toEqual(expect.arrayContaining(['concurrency', 'bad-input']));
  expect(report.results.every((item: { id: string }) => item.id.startsWith('upsert/'))).toBe(true);
  expect(result.stderr).toMatch(/^PASSED\s+upsert\/insert-assigns-id/m);
});

test.each([
  [
    'an unknown group in --skip',
    ['cli/memory.mjs', '--skip', 'concurrency,hostile'],
    /unknown group hostile in --skip; the groups are: round-trip,/,
  ],
  ['an unknown group in the options', ['cli/bad-skip.mjs'], /unknown group "hostile" in skip; the groups are: round-trip,/],
  [
    'a filter that matches no case',
    ['cli/memory.mjs', '--filter', 'no-such-case'],
    /--filter no-such-case matches no case; the groups are:/,
  ],
  ['an unknown flag', ['cli/memory.mjs', '--verbose'], /unknown option --verbose/],
  [
    'a run in which every selected case is switched off',
    ['cli/memory.mjs', '--filter', 'find-returns-same-object', '--skip', 'merge'],
    /every selected case is in a switched-off group: nothing would run/,
  ],
  ['a missing module', [], /the options module is missing/],
  ['a module that throws', ['cli/throws.mjs'], /cannot load .*throws\.mjs: cannot reach the database/],
  ['a module without options', ['cli/../json-file-store.ts'], /exports no conformance options with a create\(\) function/],
])('%s is a usage error: exit 2 with a clear message', (_, args, message) => {
  const result = run(...args.map((arg) => (arg.includes('/') ? join(fixtures, arg) : arg)));
  expect(result.stderr).toMatch(message);
  expect(result.status).toBe(2);
});

test('a store that leaves a handle open gets a warning, and the command still exits', () => {
  const result = run(join(fixtures, 'cli/leaky.mjs'), '--filter', 'round-trip/every-field');
  expect(result.signal).toBeNull();
  expect(result.status).toBe(0);
  expect(result.stderr).toMatch(/warning: the store left handles open after every store was closed \(Timeout x\d+\)/);
});

test('the command sets module, so the processes group runs on a TypeScript options module', () => {
  const result = run(join(fixtures, 'json-file-options.ts'), '--filter', 'processes/');
  expect(result.stdout).toMatch(/^PASSED\s+processes\/parallel-saves/m);
  expect(result.stdout).toMatch(/^PASSED\s+processes\/find-racing-saves/m);
  expect(result.status).toBe(0);
});
