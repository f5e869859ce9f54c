#!/usr/bin/env node
// Runs every check of the repository and ends with one line `N passed, N failed` summed over all packages:
// lint and format (Biome), build, package checks (publint, are-the-types-wrong), then every package's jest
// tests. Each jest run writes .jest-results.json; a check that is not a jest run counts as one test.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
// The workspace of pnpm-workspace.yaml: every package under packages/ and apps/, and bench/ itself.
const workspaceDirs = ['packages', 'apps']
  .filter((dir) => existsSync(join(root, dir)))
  .flatMap((dir) => readdirSync(join(root, dir)).map((name) => join(root, dir, name)))
  .concat(join(root, 'bench'))
  .filter((dir) => existsSync(join(dir, 'package.json')));
const testedDirs = workspaceDirs.filter((dir) => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).scripts?.test);

/** Every check that ran, by title, and whether it passed. */
const checks = [];

function step(title, command, args) {
  console.log(`\n=== ${title}: ${command} ${args.join(' ')}`);
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', env: process.env });
  checks.push({ title, ok: result.status === 0 });
  return result.status === 0;
}

for (const dir of testedDirs) rmSync(join(dir, '.jest-results.json'), { force: true });

step('lint and format', 'pnpm', ['exec', 'biome', 'check', '.']);
const built = step('build', 'pnpm', ['exec', 'turbo', 'run', 'build', '--output-logs=errors-only']);
if (built) {
  step('types', 'pnpm', ['exec', 'turbo', 'run', 'typecheck', '--output-logs=errors-only']);
  step('package checks', 'pnpm', ['exec', 'turbo', 'run', 'lint:package', '--output-logs=errors-only']);
  // Package tests one or two at a time: the server stores' tests start processes of their own.
  step('tests', 'pnpm', ['exec', 'turbo', 'run', 'test', '--continue', '--concurrency=2']);
}

let passed = 0;
let failed = 0;
console.log('\n=== summary');
for (const dir of testedDirs) {
  const name = dir.slice(root.length);
  const file = join(dir, '.jest-results.json');
  if (!existsSync(file)) {
    console.log(`${name}: no test results (the package's tests did not run)`);
    failed++;
    continue;
  }
  const results = JSON.parse(readFileSync(file, 'utf8'));
  const suitesBroken = results.numRuntimeErrorTestSuites ?? 0;
  console.log(
    `${name}: ${results.numPassedTests} passed, ${results.numFailedTests} failed, ${results.numPendingTests} skipped${suitesBroken ? `, ${suitesBroken} suites could not run` : ''}`,
  );
  passed += results.numPassedTests;
  failed += results.numFailedTests + suitesBroken;
}
const failures = checks.filter((check) => !check.ok).map((check) => check.title);
console.log(
  `checks (lint, build, types, package checks, test runs): ${checks.length - failures.length} passed, ${failures.length} failed${failures.length ? ` (${failures.join(', ')})` : ''}`,
);
// The test run is counted test by test above; every other check counts as one test.
const others = checks.filter((check) => check.title !== 'tests');
const othersFailed = others.filter((check) => !check.ok).length;
console.log(`${passed + others.length - othersFailed} passed, ${failed + othersFailed} failed`);
process.exitCode = failed + failures.length > 0 ? 1 : 0;
