import { spawn } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { OAuthToken, TokenStoreError, UserSignature } from '@crm/core';
import { startThrowawayPostgres, type ThrowawayPostgres } from '@crm/test-services/postgres';
import pg from 'pg';
import { PostgresTokenStore } from '../src/index.js';
import { adminQuery, dropTable, errorCode, postgresUrl, randomTable, TEST_SCHEMA } from './conformance-options.js';

const TIMEOUT_MS = 1500;
/** Timer and scheduling slack on a busy two-core machine, on top of the configured bound. */
const SLACK_MS = 1000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const token = (index: number) =>
  new OAuthToken({ userSignature: new UserSignature(`outage${index % 20}@x:1`), accessToken: `a${index}`, refreshToken: `r${index}` });

describe('a server restart in the middle of a loop of operations', () => {
  let server: ThrowawayPostgres;

  beforeAll(async () => {
    server = await startThrowawayPostgres();
  }, 60000);

  afterAll(async () => {
    await server?.destroy();
  });

  test('failures are BACKEND_UNAVAILABLE within the bound, and the same store works again afterwards', async () => {
    const store = new PostgresTokenStore({ url: server.url, table: randomTable('outage'), operationTimeoutMs: TIMEOUT_MS });
    // `phase` is where an operation started; `overlapped` marks one still in flight when the phase changed.
    const outcomes: Array<{ phase: string; overlapped: boolean; ok: boolean; code?: string; elapsedMs: number }> = [];
    const count = (phase: string, ok: boolean) =>
      outcomes.filter((outcome) => outcome.phase === phase && !outcome.overlapped && outcome.ok === ok).length;
    let phase = 'before';
    let running = true;
    // The loop runs on while the server goes down and comes back, so operations are in flight at the moment it stops.
    const loop = (async () => {
      for (let index = 0; running; index++) {
        const started = Date.now();
        const startedIn = phase;
        try {
          if (index % 2 === 0) await store.saveToken(token(index));
          else await store.findToken(new OAuthToken({ userSignature: new UserSignature(`outage${index % 20}@x:1`) }));
          outcomes.push({ phase: startedIn, overlapped: phase !== startedIn, ok: true, elapsedMs: Date.now() - started });
        } catch (error) {
          const code = TokenStoreError.is(error) ? error.code : String(error);
          outcomes.push({ phase: startedIn, overlapped: phase !== startedIn, ok: false, code, elapsedMs: Date.now() - started });
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
    })();
    const until = async (done: () => boolean, limitMs = 30000) => {
      const deadline = Date.now() + limitMs;
      while (!done() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    };
    await until(() => count('before', true) >= 30);
    phase = 'stopping';
    await server.stop();
    phase = 'down';
    await until(() => count('down', false) >= 10);
    phase = 'starting';
    await server.start();
    phase = 'restarted';
    await until(() => count('restarted', true) >= 30);
    running = false;
    await loop;

    expect(count('before', false)).toBe(0);
    expect(count('down', true)).toBe(0);
    expect(count('down', false)).toBeGreaterThanOrEqual(10);
    const failures = outcomes.filter((outcome) => !outcome.ok);
    expect([...new Set(failures.map((outcome) => outcome.code))]).toEqual(['BACKEND_UNAVAILABLE']);
    expect(Math.max(...failures.map((outcome) => outcome.elapsedMs))).toBeLessThanOrEqual(TIMEOUT_MS + SLACK_MS);
    // Once the server is back the same store object recovers by itself: every operation started after the restart succeeds.
    expect(count('restarted', true)).toBeGreaterThanOrEqual(30);
    expect(count('restarted', false)).toBe(0);
    expect(await store.getTokens()).toHaveLength(10); // saves use the even user numbers only
    await store.close();
  }, 90000);
});

describe('a server that accepts connections but never answers', () => {
  let silent: Server;
  let port: number;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    silent = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    port = (silent.address() as { port: number }).port;
  });

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });

  test('every operation of a store with its own pool fails with BACKEND_UNAVAILABLE within the bound', async () => {
    const store = new PostgresTokenStore({
      url: `postgres://postgres@127.0.0.1:${port}/test`,
      operationTimeoutMs: TIMEOUT_MS,
    });
    const operations: Array<[string, () => Promise<unknown>]> = [
      ['findToken', () => store.findToken(token(1))],
      ['saveToken', () => store.saveToken(token(2))],
      ['findTokenById', () => store.findTokenById('x')],
      ['getTokens', () => store.getTokens()],
      ['deleteToken', () => store.deleteToken('x')],
      ['deleteTokens', () => store.deleteTokens()],
      ['migrate', () => store.migrate()],
    ];
    for (const [name, operation] of operations) {
      const started = Date.now();
      expect([name, await errorCode(operation())]).toEqual([name, 'BACKEND_UNAVAILABLE']);
      expect(Date.now() - started).toBeLessThanOrEqual(TIMEOUT_MS + SLACK_MS);
    }
    // close() after the outage resolves (never rejects) once the pending connections gave up, within the bound.
    const closing = Date.now();
    await store.close();
    expect(Date.now() - closing).toBeLessThanOrEqual(TIMEOUT_MS + SLACK_MS);
    expect(await errorCode(store.getTokens())).toBe('STORE_CLOSED');
  }, 30000);

  test('a process whose store failed against the silent server and was closed exits by itself: close() leaves nothing running', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(__dirname, 'workers', 'close-worker.ts'), `postgres://postgres@127.0.0.1:${port}/test`, String(TIMEOUT_MS)],
      { cwd: join(__dirname, '..'), stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let output = '';
    let printedAt = 0;
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      printedAt = Date.now();
    });
    const killer = setTimeout(() => child.kill(), 45000);
    const exitedAt = new Promise<number>((resolve) => child.once('exit', () => resolve(Date.now())));
    // 'close', not 'exit': at 'exit' the last of its output may still be unread.
    const exitCode = await new Promise<number | null>((resolve) => child.once('close', resolve));
    clearTimeout(killer);
    const exitedAfterMs = (await exitedAt) - printedAt;
    expect(exitCode).toBe(0);
    expect(JSON.parse(output)).toEqual({ save: 'BACKEND_UNAVAILABLE', find: 'BACKEND_UNAVAILABLE', afterClose: 'STORE_CLOSED' });
    // The worker prints its last line right after close(); a socket or timer left behind (the pool's 30 s idle
    // timer, a pending connection) would keep it alive long after that.
    expect(exitedAfterMs).toBeLessThan(SLACK_MS * 3);
  }, 60000);

  test('a pool passed in without any timeouts still cannot hang an operation past the bound', async () => {
    const pool = new pg.Pool({ connectionString: `postgres://postgres@127.0.0.1:${port}/test` });
    pool.on('error', () => {});
    const store = new PostgresTokenStore({ pool, operationTimeoutMs: TIMEOUT_MS });
    const started = Date.now();
    expect(await errorCode(store.findToken(token(3)))).toBe('BACKEND_UNAVAILABLE');
    expect(Date.now() - started).toBeLessThanOrEqual(TIMEOUT_MS + SLACK_MS);
    for (const socket of sockets) socket.destroy(); // lets the pool give up its pending connection
    await pool.end().catch(() => {});
  }, 30000);
});

test('an operation blocked by a lock fails with BACKEND_UNAVAILABLE within the bound, then works once the lock is gone', async () => {
  const url = await postgresUrl();
  const table = randomTable('locked');
  const store = new PostgresTokenStore({ url, schema: TEST_SCHEMA, table, operationTimeoutMs: TIMEOUT_MS });
  await store.saveToken(token(1));
  const locker = new pg.Client({ connectionString: url });
  await locker.connect();
  try {
    await locker.query('BEGIN');
    await locker.query(`LOCK TABLE "${TEST_SCHEMA}"."${table}" IN ACCESS EXCLUSIVE MODE`);
    const started = Date.now();
    expect(await errorCode(store.findToken(token(1)))).toBe('BACKEND_UNAVAILABLE');
    expect(Date.now() - started).toBeLessThanOrEqual(TIMEOUT_MS + SLACK_MS);
    await locker.query('ROLLBACK');
    expect((await store.findToken(new OAuthToken({ userSignature: new UserSignature('outage1@x:1') })))?.accessToken).toBe('a1');
    const waiting = await adminQuery<{ n: number }>(
      url,
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%${table}%'`,
    );
    expect(waiting[0]?.n).toBe(0); // the server cancelled the blocked statement (statement_timeout), nothing lingers
  } finally {
    await locker.end();
    await store.close();
    await dropTable(url, TEST_SCHEMA, table);
  }
}, 30000);

/**
 * The deadline once answered the caller without stopping the statement, and
 * statement_timeout starts only on the server (time waiting for a pool connection is not counted), so a
 * save reported as BACKEND_UNAVAILABLE could still commit once a lock went away, after the caller had
 * moved on. An audit trigger records every committed write of an access token: the timed-out one must
 * never appear, and the newer save must be what stays.
 */
describe('a save that timed out is never applied afterwards', () => {
  test.each([
    ['your pool without any timeouts', false],
    ['its own pool of one connection, the save waiting for that connection first', true],
  ])(
    '%s',
    async (_, ownPool) => {
      const url = await postgresUrl();
      const table = randomTable('late');
      const qualified = `"${TEST_SCHEMA}"."${table}"`;
      const pool = ownPool ? undefined : new pg.Pool({ connectionString: url, max: 2 });
      const store =
        pool === undefined
          ? new PostgresTokenStore({ url, schema: TEST_SCHEMA, table, operationTimeoutMs: TIMEOUT_MS, poolConfig: { max: 1 } })
          : new PostgresTokenStore({ pool, schema: TEST_SCHEMA, table, operationTimeoutMs: TIMEOUT_MS });
      const userSignature = new UserSignature('late@x:1');
      const locker = new pg.Client({ connectionString: url });
      await locker.connect();
      try {
        await store.saveToken(new OAuthToken({ userSignature, accessToken: 'initial', refreshToken: 'kept' }));
        // A rolled-back write leaves no audit row: the trigger's insert is part of the same transaction.
        await adminQuery(
          url,
          `CREATE TABLE "${TEST_SCHEMA}"."${table}_audit" (seq bigserial, access_token text);
         CREATE FUNCTION "${TEST_SCHEMA}"."${table}_audit"() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN INSERT INTO "${TEST_SCHEMA}"."${table}_audit" (access_token) VALUES (NEW.access_token); RETURN NEW; END $$;
         CREATE TRIGGER audit AFTER INSERT OR UPDATE ON ${qualified} FOR EACH ROW EXECUTE FUNCTION "${TEST_SCHEMA}"."${table}_audit"()`,
        );
        await locker.query('BEGIN');
        await locker.query(`LOCK TABLE ${qualified} IN ACCESS EXCLUSIVE MODE`);
        // With one pooled connection, a blocked read holds it for half the deadline before the save gets it.
        const blockedRead = ownPool ? errorCode(store.findToken(new OAuthToken({ userSignature }))) : null;
        if (ownPool) await sleep(TIMEOUT_MS / 2);
        const started = Date.now();
        expect(await errorCode(store.saveToken(new OAuthToken({ userSignature, accessToken: 'timed-out' })))).toBe('BACKEND_UNAVAILABLE');
        expect(Date.now() - started).toBeLessThanOrEqual(TIMEOUT_MS + SLACK_MS);
        if (blockedRead !== null) expect(await blockedRead).toBe('BACKEND_UNAVAILABLE');
        await sleep(300);
        await locker.query('ROLLBACK'); // the lock goes away after the deadline
        await store.saveToken(new OAuthToken({ userSignature, accessToken: 'newer' }));
        await sleep(TIMEOUT_MS); // time for a save that was not stopped to land
        const stored = await store.findToken(new OAuthToken({ userSignature }));
        expect([stored?.accessToken, stored?.refreshToken]).toEqual(['newer', 'kept']);
        const audit = await adminQuery<{ access_token: string }>(
          url,
          `SELECT access_token FROM "${TEST_SCHEMA}"."${table}_audit" ORDER BY seq`,
        );
        expect(audit.map((row) => row.access_token)).toEqual(['newer']);
      } finally {
        await locker.end();
        await store.close();
        await pool?.end();
        await adminQuery(
          url,
          `DROP TABLE IF EXISTS ${qualified}, "${TEST_SCHEMA}"."${table}_audit"; DROP FUNCTION IF EXISTS "${TEST_SCHEMA}"."${table}_audit"()`,
        );
      }
    },
    30000,
  );
});
