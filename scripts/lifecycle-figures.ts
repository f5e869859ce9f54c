/**
 * Figures for the token lifecycle on every built-in store, against the accounts emulator:
 * - `getAccessToken` on a fresh token (no refresh: one store read), median and p99 over many calls;
 * - refreshes the emulator saw when 4 processes × 25 concurrent callers asked for one stale token: that is
 *   the conformance case `locking/processes-one-refresh`, run here through the published command.
 * Stores are made by the options modules the store packages' tests use (servers on their usual local ports).
 * Run with `pnpm figures:lifecycle`. Absolute figures move with the machine's load; compare within one run.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startAccountsEmulator } from '@crm/accounts-emulator';
import { OAuthToken, TokenManager, type TokenStore, UserSignature } from '@crm/core';
import { type ConformanceReport, loadOptions } from '@crm/store-conformance';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const conformanceCommand = join(dirname(require.resolve('@crm/store-conformance/package.json')), 'bin', 'crm-store-conformance.js');
const CALLS = 2000;

const targets = [
  { name: 'MemoryTokenStore', module: 'scripts/memory-store-options.ts' },
  { name: 'SQLiteTokenStore', module: 'packages/store-sqlite/test/conformance-options.ts' },
  { name: 'FileTokenStore', module: 'packages/store-file/test/conformance-options.ts' },
  { name: 'PostgresTokenStore', module: 'packages/store-postgres/test/conformance-options.ts' },
  { name: 'RedisTokenStore', module: 'packages/store-redis/test/conformance-options.ts' },
  { name: 'MySQLTokenStore (MariaDB)', module: 'packages/store-mysql/test/conformance-options.ts' },
];

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;
}

/** Median and p99 of `getAccessToken` on a fresh token, in microseconds. */
async function freshLatency(store: TokenStore): Promise<{ median: number; p99: number; requests: number }> {
  const emulator = await startAccountsEmulator();
  try {
    const redirectUrl = 'https://app.example.com/oauth/callback';
    const { clientId, clientSecret } = emulator.registerClient({ redirectUri: redirectUrl });
    const name = `figures-${Date.now()}@zylker.com`;
    const grantToken = emulator.issueGrantCode({ clientId, userEmail: name });
    await store.saveToken(new OAuthToken({ userSignature: new UserSignature(name), clientId, clientSecret, redirectUrl, grantToken }));
    const manager = new TokenManager({ store, accountsUrl: emulator.url });
    for (let n = 0; n < 200; n++) await manager.getAccessToken(name); // warm-up (the exchange happens here)
    const before = emulator.counts().tokenRequests;
    const times: number[] = [];
    for (let n = 0; n < CALLS; n++) {
      const started = process.hrtime.bigint();
      await manager.getAccessToken(name);
      times.push(Number(process.hrtime.bigint() - started) / 1000);
    }
    times.sort((a, b) => a - b);
    return { median: quantile(times, 0.5), p99: quantile(times, 0.99), requests: emulator.counts().tokenRequests - before };
  } finally {
    await emulator.close();
  }
}

/** The conformance case with 4 processes × 25 callers, through the published command. */
function oneRefreshCase(module: string): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', conformanceCommand, join(root, module), '--json', '--filter', 'locking/processes-one-refresh'],
      { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] },
    );
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.on('close', () => {
      try {
        const report = JSON.parse(stdout) as ConformanceReport;
        const result = report.results.find((entry) => entry.id === 'locking/processes-one-refresh');
        if (!result) resolve('not run');
        else if (result.status === 'passed') resolve('1 refresh, 100 callers, 1 token');
        else if (result.status === 'skipped') resolve(`skipped (${result.error ?? ''})`);
        else resolve(`FAILED: ${result.error ?? ''}`);
      } catch {
        resolve('could not run');
      }
    });
  });
}

async function main(): Promise<void> {
  const rows: string[][] = [];
  for (const target of targets) {
    process.stdout.write(`${target.name}: `);
    const options = await loadOptions(join(root, target.module));
    await options.setup?.();
    const store = await options.create();
    let latency: { median: number; p99: number; requests: number };
    try {
      latency = await freshLatency(store);
    } finally {
      await store.close?.();
      await options.destroy?.(store);
      await options.teardown?.();
    }
    const processes = target.name === 'MemoryTokenStore' ? 'one process only' : await oneRefreshCase(target.module);
    console.log(`${latency.median.toFixed(1)} µs median; ${processes}`);
    rows.push([target.name, latency.median.toFixed(1), latency.p99.toFixed(1), String(latency.requests), processes]);
  }
  const header = ['store', 'fresh getAccessToken median µs', 'p99 µs', 'accounts requests', '4 processes × 25 callers, stale token'];
  console.log(`\n| ${header.join(' | ')} |\n| ${header.map((_, n) => (n === 0 || n === 4 ? '---' : '---:')).join(' | ')} |`);
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
  console.log(`\n${CALLS} calls per store after 200 warm-up calls; Node ${process.version}.`);
  process.exit(0); // throwaway servers and pools started by the options modules end with this process
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
