import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { kill } from 'node:process';
import { OAuthToken, TokenStoreError, UserSignature } from '@crm/core';
import { startThrowawayMySQL, type ThrowawayMySQL } from '@crm/test-services/mysql';
import { MySQLTokenStore } from '../src/index';
import { randomTable } from './conformance-options';

/** The store's bound in these tests, and what the clock may add on a loaded two-core machine. */
const BOUND_MS = 1500;
const SLACK_MS = 700;

interface Outcome {
  phase: string;
  ok: boolean;
  code: string | null;
  ms: number;
}

let server: ThrowawayMySQL;

beforeAll(async () => {
  // Never the machine's shared server: a throwaway one this test may stop, start and freeze.
  server = await startThrowawayMySQL();
}, 120000);
afterAll(async () => {
  await server?.destroy();
}, 60000);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Saves then finds one user until `until()` is true; every outcome is timed. An iteration that spans a
 * change of phase (the server stopped while it ran) is labelled with both, e.g. `up->down`.
 */
async function loop(store: MySQLTokenStore, phase: () => string, until: () => boolean): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  for (let n = 0; !until(); n++) {
    const started = performance.now();
    const current = phase();
    const label = () => (phase() === current ? current : `${current}->${phase()}`);
    try {
      await store.saveToken(new OAuthToken({ userSignature: new UserSignature('looping'), accessToken: `a-${n}` }));
      const found = await store.findToken(new OAuthToken({ userSignature: new UserSignature('looping') }));
      expect(found?.accessToken).toBe(`a-${n}`);
      outcomes.push({ phase: label(), ok: true, code: null, ms: performance.now() - started });
    } catch (error) {
      if (!TokenStoreError.is(error)) throw error;
      outcomes.push({ phase: label(), ok: false, code: error.code, ms: performance.now() - started });
    }
    await sleep(25);
  }
  return outcomes;
}

function checkFailures(outcomes: Outcome[]): void {
  const failures = outcomes.filter((outcome) => !outcome.ok);
  expect(failures.length).toBeGreaterThan(0);
  for (const failure of failures) {
    expect(failure.code).toBe('BACKEND_UNAVAILABLE');
    // One iteration is a save and a find: each is bounded, and a failed save skips the find.
    expect(failure.ms).toBeLessThan(2 * BOUND_MS + SLACK_MS);
  }
}

test('the server stops and starts again in the middle of a loop: BACKEND_UNAVAILABLE within the bound, then the same store works', async () => {
  const store = new MySQLTokenStore({ url: server.url, table: randomTable('crm_outage'), operationTimeoutMs: BOUND_MS });
  let phase = 'up';
  let afterRestart = 0;
  try {
    const running = loop(
      store,
      () => phase,
      () => afterRestart >= 10,
    );
    const watch = setInterval(() => {
      if (phase === 'restarted') afterRestart++;
    }, 100);
    await sleep(1000);
    phase = 'down';
    await server.stop();
    await sleep(3000);
    await server.start();
    phase = 'restarted';
    const outcomes = await running;
    clearInterval(watch);
    expect(outcomes.filter((outcome) => outcome.phase === 'up').every((outcome) => outcome.ok)).toBe(true);
    expect(outcomes.filter((outcome) => outcome.phase === 'down').some((outcome) => !outcome.ok)).toBe(true);
    checkFailures(outcomes);
    const restarted = outcomes.filter((outcome) => outcome.phase === 'restarted');
    expect(restarted.length).toBeGreaterThan(3);
    expect(restarted.slice(-3).every((outcome) => outcome.ok)).toBe(true);
  } finally {
    await store.close();
  }
}, 120000);

test('a frozen server (SIGSTOP) never hangs a promise: BACKEND_UNAVAILABLE within the bound, and recovery after SIGCONT', async () => {
  const store = new MySQLTokenStore({ url: server.url, table: randomTable('crm_frozen'), operationTimeoutMs: BOUND_MS });
  let phase = 'up';
  let thawedFor = 0;
  const pid = server.pid()!;
  try {
    const running = loop(
      store,
      () => phase,
      () => thawedFor >= 15,
    );
    const watch = setInterval(() => {
      if (phase === 'thawed') thawedFor++;
    }, 100);
    await sleep(1000);
    phase = 'frozen';
    kill(pid, 'SIGSTOP');
    await sleep(2 * BOUND_MS + 1000);
    kill(pid, 'SIGCONT');
    phase = 'thawed';
    const outcomes = await running;
    clearInterval(watch);
    checkFailures(outcomes);
    expect(outcomes.filter((outcome) => outcome.phase === 'frozen').some((outcome) => !outcome.ok)).toBe(true);
    expect(outcomes.slice(-3).every((outcome) => outcome.ok)).toBe(true);
  } finally {
    kill(pid, 'SIGCONT');
    await store.close();
  }
}, 120000);

test('a port where nothing listens is BACKEND_UNAVAILABLE at once', async () => {
  const url = new URL(server.url);
  await server.stop();
  try {
    const store = new MySQLTokenStore({ url: url.toString(), operationTimeoutMs: BOUND_MS });
    const started = performance.now();
    const error = await store.getTokens().catch((caught: unknown) => caught);
    expect(TokenStoreError.is(error) && error.code).toBe('BACKEND_UNAVAILABLE');
    expect(performance.now() - started).toBeLessThan(BOUND_MS + SLACK_MS);
    await store.close();
  } finally {
    await server.start();
  }
}, 60000);

/**
 * Runs test/workers/close-after-outage.ts: it saves, the server then stops or freezes, its next calls fail,
 * and it closes the store unguarded. Resolves with its exit code, output, and the milliseconds from the
 * outage to its exit.
 */
async function closeAfterOutage(outage: () => Promise<void>): Promise<{ code: number | null; output: string; ms: number }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(__dirname, 'workers', 'close-after-outage.ts'), server.url, String(BOUND_MS)],
    {
      cwd: join(__dirname, '..'),
    },
  );
  let output = '';
  child.stdout.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr.on('data', (chunk) => {
    output += chunk;
  });
  // When it exited, for the timing; 'close' for the outcome: at 'exit' its last output may still be unread.
  let exitedAt = 0;
  child.once('exit', () => {
    exitedAt = performance.now();
  });
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  while (!output.includes('ready') && child.exitCode === null) await sleep(50);
  await outage();
  const started = performance.now();
  child.stdin.write('go\n');
  const code = await exited;
  return { code, output, ms: exitedAt - started };
}

describe('close() after an outage resolves, and the process exits by itself', () => {
  test('server stopped', async () => {
    try {
      const result = await closeAfterOutage(() => server.stop());
      expect(result.output).toContain('BACKEND_UNAVAILABLE BACKEND_UNAVAILABLE');
      expect(result.output).toContain('closed');
      expect(result.code).toBe(0);
      expect(result.ms).toBeLessThan(BOUND_MS + 2000);
    } finally {
      await server.start();
    }
  }, 60000);

  // Before: close() rejected with the pool's stale "connect ETIMEDOUT" and the process exited 1; and sockets
  // half-closed by mysql2 kept a process alive for as long as the server stayed frozen.
  test('server frozen (SIGSTOP)', async () => {
    const pid = server.pid()!;
    try {
      const result = await closeAfterOutage(async () => {
        kill(pid, 'SIGSTOP');
      });
      expect(result.output).toContain('BACKEND_UNAVAILABLE BACKEND_UNAVAILABLE');
      expect(result.output).toContain('closed');
      expect(result.code).toBe(0);
      expect(result.ms).toBeLessThan(BOUND_MS + 2000);
    } finally {
      kill(pid, 'SIGCONT');
    }
  }, 60000);
});
