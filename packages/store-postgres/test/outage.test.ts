import { createServer, type Server, type Socket } from 'node:net';
import { OAuthToken, TokenStoreError, UserSignature } from '@crm/core';
import { startThrowawayPostgres, type ThrowawayPostgres } from '@crm/test-services/postgres';
import pg from 'pg';
import { PostgresTokenStore } from '../src/index';
import { adminQuery, dropTable, errorCode, postgresUrl, randomTable, TEST_SCHEMA } from './conformance-options.js';

const TIMEOUT_MS = 1500;
/** Timer and scheduling slack on a busy two-core machine, on top of the configured bound. */
const SLACK_MS = 1000;

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
    await store.close();
  }, 30000);

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
