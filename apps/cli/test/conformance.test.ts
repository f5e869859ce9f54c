/** `crm-tokens conformance` as users run it: the built command in a process of its own, on URLs and modules. */
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { POSTGRES_URL, REDIS_URL, runCli } from './helpers';

const repository = resolve(__dirname, '../../..');

test('a sqlite: URL runs the selected cases on temporary files and prints a row per case and the summary', async () => {
  const result = await runCli(['conformance', 'sqlite:./never-created.db', '--filter', 'merge/']);
  expect(result.code).toBe(0);
  expect(result.stdout).toMatch(/^conformance: sqlite:\.\/never-created\.db$/m);
  expect(result.stdout).toMatch(/^PASSED\s+merge\/find-returns-same-object\s+\d+ ms$/m);
  expect(result.stdout).toContain('switched off: faults (no injectFault option)');
  expect(result.stdout).toMatch(/^5 passed, 0 failed, 0 skipped$/m);
});

test('on a URL, worker processes open the same storage through the built options module', async () => {
  const result = await runCli(['conformance', 'sqlite:tokens.db', '--filter', 'locking/processes-counter'], { timeoutMs: 60000 });
  expect(result.code).toBe(0);
  expect(result.stdout).toMatch(/^PASSED\s+locking\/processes-counter\s+\d+ ms$/m);
  expect(result.stdout).toMatch(/^1 passed, 0 failed, 0 skipped$/m);
});

test('--json prints the report on stdout and the rows on stderr', async () => {
  const result = await runCli(['conformance', 'memory:', '--filter', 'merge/find-returns', '--json']);
  expect(result.code).toBe(0);
  const report = JSON.parse(result.stdout) as { passed: number; failed: number; skippedGroups: string[] };
  expect(report).toMatchObject({ passed: 1, failed: 0 });
  expect(report.skippedGroups).toContain('processes');
  expect(result.stderr).toMatch(/^PASSED\s+merge\/find-returns-same-object/m);
});

test('a module path is loaded as crm-store-conformance loads it, JavaScript or TypeScript', async () => {
  const javascript = await runCli([
    'conformance',
    resolve(repository, 'packages/store-conformance/test/fixtures/cli/memory.mjs'),
    '--filter',
    'merge/',
  ]);
  expect(javascript.code).toBe(0);
  expect(javascript.stdout).toMatch(/^5 passed, 0 failed, 0 skipped$/m);
  const typescript = await runCli([
    'conformance',
    resolve(repository, 'docs/examples/json-file-store.conformance.ts'),
    '--filter',
    'upsert/insert-keeps',
  ]);
  expect(typescript.code).toBe(0);
  expect(typescript.stdout).toMatch(/^PASSED\s+upsert\/insert-keeps-given-id/m);
});

test('a bad URL, a missing module, an unknown group and a filter that matches nothing are usage errors (exit 2)', async () => {
  const badScheme = await runCli(['conformance', 'nosuch://host/db']);
  expect(badScheme.code).toBe(2);
  expect(badScheme.stderr).toContain('the store URL has the unknown scheme nosuch:');
  const badParameter = await runCli(['conformance', 'postgres://postgres:hunter2secret@127.0.0.1:5432/test?tabel=x', '--filter', 'merge/']);
  expect(badParameter.code).toBe(2);
  expect(badParameter.stderr + badParameter.stdout).not.toContain('hunter2secret');
  expect((await runCli(['conformance', './no-such-options.mjs'])).code).toBe(2);
  expect((await runCli(['conformance', 'memory:', '--skip', 'nonsense'])).code).toBe(2);
  expect((await runCli(['conformance', 'memory:', '--filter', 'no case has this'])).code).toBe(2);
  expect((await runCli(['conformance'])).code).toBe(2);
});

test('an unreachable server exits 3 without its password', async () => {
  const result = await runCli(['conformance', 'postgres://postgres:hunter2secret@127.0.0.1:1/test', '--filter', 'merge/']);
  expect(result.code).toBe(3);
  expect(result.stderr + result.stdout).not.toContain('hunter2secret');
});

test('--all prints one table of every built-in store; a server that cannot be reached is a row naming its variable', async () => {
  const result = await runCli(['conformance', '--all', '--filter', 'merge/find-returns-same-object'], {
    env: { REDIS_URL: 'redis://:hunter2secret@127.0.0.1:1' },
    timeoutMs: 90000,
  });
  expect(result.stdout).toContain('Conformance of the built-in stores');
  for (const store of ['MemoryTokenStore (reference)', 'SQLiteTokenStore', 'FileTokenStore', 'PostgresTokenStore', 'MySQLTokenStore']) {
    expect(result.stdout).toMatch(new RegExp(`^${store.replace(/[()]/g, '\\$&')}\\s+1\\s+0\\s+0\\s+[\\d.]+$`, 'm'));
  }
  expect(result.stdout).toMatch(/^RedisTokenStore\s+-\s+-\s+-\s+[\d.]+$/m);
  expect(result.stdout).toMatch(/RedisTokenStore: not reachable at redis:\/\/:\*\*\*@127\.0\.0\.1:1.*set REDIS_URL/);
  expect(result.stdout).not.toContain('hunter2secret');
  expect(result.stdout).toMatch(/^5 passed, 0 failed$/m);
  // No case failed, but a server could not be reached.
  expect(result.code).toBe(3);
});

test("each case's URL keeps the store parameters of the base URL, replacing only the file, table or prefix", async () => {
  // The built options module, as the suite's worker processes load it.
  const script = `
    import { urlConformanceOptions } from ${JSON.stringify(resolve(__dirname, '../dist/conformance-url-options.js'))};
    const shared = [];
    for (const base of process.argv.slice(1)) {
      const options = urlConformanceOptions(base);
      const store = await options.create();
      shared.push({ url: options.share(store), operationTimeoutMs: store.operationTimeoutMs ?? null, maxSaveAttempts: store.maxSaveAttempts ?? null });
      await store.close();
      await options.destroy(store);
    }
    console.log(JSON.stringify(shared));`;
  const bases = [
    'sqlite:./x.db?journalMode=DELETE&operationTimeoutMs=1500',
    `${POSTGRES_URL}?operationTimeoutMs=1500&maxSaveAttempts=2&schema=public`,
    `${REDIS_URL}?prefix=cli-conf&operationTimeoutMs=1500`,
  ];
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script, ...bases], { encoding: 'utf8', cwd: tmpdir() });
  expect(result.stderr).toBe('');
  const [sqlite, postgres, redis] = JSON.parse(result.stdout) as {
    url: string;
    operationTimeoutMs: number | null;
    maxSaveAttempts: number | null;
  }[];
  expect(sqlite?.url).toMatch(/^sqlite:\/.*\/tokens\.db\?journalMode=DELETE&operationTimeoutMs=1500$/);
  expect(postgres?.url).toMatch(/[?&]table=crm_conformance_\w+/);
  expect(postgres?.url).toContain('schema=public');
  expect(postgres).toMatchObject({ operationTimeoutMs: 1500, maxSaveAttempts: 2 });
  expect(new URL(postgres?.url as string).searchParams.get('operationTimeoutMs')).toBe('1500');
  expect(redis?.url).toMatch(/[?&]prefix=cli-conf%3A\w+/);
  expect(redis?.operationTimeoutMs).toBe(1500);
});
