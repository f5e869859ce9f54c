/**
 * Packs @crm/core and @crm/store-conformance as they would be published, installs the tarballs into a
 * project outside the workspace, and runs the command against a small store written there in plain
 * JavaScript, as a third-party store author does.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const packagesDir = resolve(__dirname, '../..');
let project: string;

const THIRD_PARTY_STORE = `
import { checkIdArgument, checkSaveArgument, checkTokenArgument, copyStoredFields, fillAbsentFields, lookupKey, matchesLookupKey, planSave } from '@crm/core';

// A third party's store: tokens in a Map, decisions by core's rules.
export class MapStore {
  constructor({ broken = false } = {}) { this.tokens = new Map(); this.broken = broken; }
  byKey(key) { for (const t of this.tokens.values()) if (matchesLookupKey(t, key)) return t; return null; }
  async findToken(token) {
    checkTokenArgument(token, 'MapStore', 'findToken');
    const key = lookupKey(token);
    const stored = key ? this.byKey(key) : (this.broken ? this.tokens.values().next().value ?? null : null);
    return stored ? fillAbsentFields(token, stored) : null;
  }
  async saveToken(token) {
    checkSaveArgument(token, 'MapStore');
    const plan = planSave({ findById: (id) => this.tokens.get(id) ?? null, findByKey: (key) => this.byKey(key) }, token, 'MapStore');
    this.tokens.set(plan.stored.id, plan.stored);
    copyStoredFields(token, plan.stored);
  }
  async deleteToken(id) { checkIdArgument(id, 'MapStore', 'deleteToken'); this.tokens.delete(id); }
  async getTokens() { return [...this.tokens.values()].map((t) => t.clone()); }
  async deleteTokens() { this.tokens.clear(); }
  async findTokenById(id) { checkIdArgument(id, 'MapStore', 'findTokenById'); return this.tokens.get(id)?.clone() ?? null; }
}
`;

function run(command: string, args: string[], cwd: string) {
  return spawnSync(command, args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false' } });
}

beforeAll(() => {
  project = mkdtempSync(join(tmpdir(), 'crm-conformance-consumer-'));
  const tarballs = join(project, 'tarballs');
  for (const name of ['core', 'store-conformance']) {
    execFileSync('pnpm', ['pack', '--pack-destination', tarballs], { cwd: join(packagesDir, name), stdio: 'pipe' });
  }
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'third-party-store', private: true, type: 'module' }));
  const packed = readdirSync(tarballs).map((file) => join(tarballs, file));
  const install = run('npm', ['install', '--no-save', '--no-package-lock', ...packed], project);
  if (install.status !== 0) throw new Error(`npm install of the packed tarballs failed: ${install.stderr}`);
  writeFileSync(join(project, 'map-store.mjs'), THIRD_PARTY_STORE);
  writeFileSync(
    join(project, 'good.mjs'),
    "import { MapStore } from './map-store.mjs';\nexport default { create: () => new MapStore() };\n",
  );
  writeFileSync(
    join(project, 'broken.mjs'),
    "import { MapStore } from './map-store.mjs';\nexport default { create: () => new MapStore({ broken: true }) };\n",
  );
  writeFileSync(
    join(project, 'good.cjs'),
    "const { MemoryTokenStore } = require('@crm/core');\nmodule.exports = { createConformanceOptions: () => ({ create: () => new MemoryTokenStore() }) };\n",
  );
}, 180000);

afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

test('the installed command passes a correct plain-JavaScript store', () => {
  const result = run('npx', ['--no-install', 'crm-store-conformance', './good.mjs'], project);
  expect(result.stdout).toMatch(/PASSED\s+find-rules\/rule-4-nothing-identifies/);
  expect(result.stdout).toMatch(/^\d+ passed, 0 failed, 2 skipped$/m);
  expect(result.stdout).toContain('switched off: persistence');
  expect(result.status).toBe(0);
});

test('the installed command fails a broken store with a non-zero exit code', () => {
  const result = run('npx', ['--no-install', 'crm-store-conformance', './broken.mjs'], project);
  expect(result.stdout).toMatch(/FAILED\s+find-rules\/rule-4-nothing-identifies/);
  expect(result.stdout).toMatch(/^\d+ passed, [1-9]\d* failed, 2 skipped$/m);
  expect(result.status).toBe(1);
});

test('CommonJS option modules, --filter and --json work', () => {
  const result = run('npx', ['--no-install', 'crm-store-conformance', './good.cjs', '--filter', 'upsert/', '--json'], project);
  expect(result.status).toBe(0);
  const report = JSON.parse(result.stdout);
  expect(report.failed).toBe(0);
  expect(report.results.length).toBeGreaterThan(5);
  expect(report.results.every((item: { id: string }) => item.id.startsWith('upsert/'))).toBe(true);
});

test('a module without options is a usage error (exit 2)', () => {
  writeFileSync(join(project, 'empty.mjs'), 'export const nothing = 1;\n');
  const result = run('npx', ['--no-install', 'crm-store-conformance', './empty.mjs'], project);
  expect(result.stderr).toContain('exports no conformance options');
  expect(result.status).toBe(2);
});
