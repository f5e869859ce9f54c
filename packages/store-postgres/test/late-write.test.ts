/**
 * A write whose bytes reach the server only after the store's deadline (a network holding the packets, a
 * server that stalls before it reads its socket) has been reported as BACKEND_UNAVAILABLE and its connection
 * destroyed, but the server still reads and runs all it was sent. The pipeline's first step refuses to go on
 * past the deadline on the server's clock, so its COMMIT ends a failed transaction: nothing is applied.
 */
import { OAuthToken, type TokenStoreError, UserSignature } from '@crm/core';
import pg from 'pg';
import { PostgresTokenStore } from '../src/index.js';
import { SERVER_NOW, WRITE } from '../src/sql.js';
import { adminQuery, dropTable, errorCode, postgresUrl, randomTable, TEST_SCHEMA } from './conformance-options.js';
import { startProxy } from './proxy.js';

const TIMEOUT_MS = 1000;
/** How long the proxy holds a write's bytes: well past the deadline. */
const HOLD_MS = 2500;
/** Timer and scheduling slack on a busy two-core machine. */
const SLACK_MS = 1000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each([
  ['the store pipeline (one Sync)', false],
  ["a pool in pg's pipeline mode", true],
])('%s: a write that reaches the server after its deadline', (_, pipeline) => {
  test('fails with BACKEND_UNAVAILABLE at the deadline and is not applied when the server runs it later', async () => {
    const url = await postgresUrl();
    const proxy = await startProxy(new URL(url));
    const pool = new pg.Pool({ connectionString: proxy.url, max: 1, pipeline });
    pool.on('error', () => {});
    const table = randomTable('late_bytes');
    const store = new PostgresTokenStore({ pool, schema: TEST_SCHEMA, table, operationTimeoutMs: TIMEOUT_MS });
    // Read directly, not through the proxy or the store.
    const storedRows = () =>
      adminQuery(url, `SELECT id, user_name, access_token, refresh_token, expiry_time::text FROM ${store.qualifiedTable} ORDER BY id`);
    try {
      const userSignature = new UserSignature('late@x:1');
      const stored = new OAuthToken({ userSignature, accessToken: 'initial', refreshToken: 'kept', expiryTime: 1 });
      await store.saveToken(stored);
      await store.saveToken(new OAuthToken({ userSignature: new UserSignature('other@x:1'), accessToken: 'other' }));
      const before = await storedRows();
      const writes: Array<[string, () => Promise<unknown>]> = [
        ['save by user name', () => store.saveToken(new OAuthToken({ userSignature, accessToken: 'late', expiryTime: 2 }))],
        ['save by id', () => store.saveToken(new OAuthToken({ id: stored.id, accessToken: 'late-by-id', expiryTime: 3 }))],
        ['insert', () => store.saveToken(new OAuthToken({ userSignature: new UserSignature('new@x:1'), accessToken: 'new' }))],
        ['deleteToken', () => store.deleteToken(stored.id as string)],
        ['deleteTokens', () => store.deleteTokens()],
      ];
      for (const [name, write] of writes) {
        // The pool's one connection is open and idle: what the proxy holds is the write itself.
        await store.findToken(new OAuthToken({ userSignature }));
        proxy.hold();
        const started = Date.now();
        expect([name, await errorCode(write())]).toEqual([name, 'BACKEND_UNAVAILABLE']);
        expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + SLACK_MS);
        await sleep(HOLD_MS - (Date.now() - started));
        const [completed, refused] = [proxy.received('C'), proxy.received('E')];
        // Resolves once the server has read the held bytes and the end of the connection, and closed it.
        await proxy.release();
        // The server did run what it got (its BEGIN at least), after the deadline.
        expect([name, proxy.received('C') > completed]).toEqual([name, true]);
        expect([name, await storedRows()]).toEqual([name, before]);
        expect([name, proxy.received('E') > refused]).toEqual([name, true]); // it refused it: the deadline had passed
      }
      // The store goes on working on a fresh connection.
      await store.saveToken(new OAuthToken({ userSignature, accessToken: 'after' }));
      expect((await storedRows()).find((row) => row.id === stored.id)).toMatchObject({ access_token: 'after', refresh_token: 'kept' });
    } finally {
      await store.close();
      await pool.end();
      await proxy.close();
      await dropTable(url, TEST_SCHEMA, table);
    }
  }, 60000);
});

test("a write whose deadline passes on the server's clock first fails there, and the caller gets BACKEND_UNAVAILABLE from it", async () => {
  // The store learns the server's clock on its first write. Its answer held back by the proxy makes the
  // store place its deadlines earlier on the server by that much; a later write that reaches the server
  // between that point and the store's own deadline is refused there, while the store still waits.
  const timeoutMs = 10_000;
  const url = await postgresUrl();
  const proxy = await startProxy(new URL(url));
  const pool = new pg.Pool({ connectionString: proxy.url, max: 1 });
  pool.on('error', () => {});
  const table = randomTable('late_clock');
  const store = new PostgresTokenStore({ pool, schema: TEST_SCHEMA, table, operationTimeoutMs: timeoutMs });
  try {
    await store.migrate();
    const userSignature = new UserSignature('clock@x:1');
    proxy.holdReplies();
    const first = store.saveToken(new OAuthToken({ userSignature, accessToken: 'initial' }));
    await sleep(timeoutMs / 10 - 100); // less than the largest round trip the store keeps a measurement from
    proxy.releaseReplies();
    await first;
    proxy.hold();
    const started = Date.now();
    let settledAfterMs = 0;
    const late = store.saveToken(new OAuthToken({ userSignature, accessToken: 'late' })).then(
      () => null,
      (error: unknown) => {
        settledAfterMs = Date.now() - started;
        return error as TokenStoreError;
      },
    );
    await sleep(timeoutMs - timeoutMs / 20 - (Date.now() - started)); // past the server's deadline, before the store's
    void proxy.release(); // its connection stays open: the store got an answer on it
    const failure = await late;
    expect(failure?.code).toBe('BACKEND_UNAVAILABLE');
    expect(failure?.message).toMatch(/received the saveToken after its deadline/);
    expect(settledAfterMs).toBeLessThan(timeoutMs);
    expect((await store.findToken(new OAuthToken({ userSignature })))?.accessToken).toBe('initial');
    // The store learns the server's clock again, and writes go on.
    await store.saveToken(new OAuthToken({ userSignature, accessToken: 'after' }));
    expect((await store.findToken(new OAuthToken({ userSignature })))?.accessToken).toBe('after');
  } finally {
    await store.close();
    await pool.end();
    await proxy.close();
    await dropTable(url, TEST_SCHEMA, table);
  }
}, 60000);

test('the deadline step: in time it bounds the transaction by what is left; past it, it fails with 22012', async () => {
  const client = new pg.Client({ connectionString: await postgresUrl() });
  await client.connect();
  try {
    const serverNow = async () => Number((await client.query<{ now_ms: string }>(SERVER_NOW)).rows[0]?.now_ms);
    const settings = `SELECT setting FROM pg_settings WHERE name IN ('statement_timeout', 'idle_in_transaction_session_timeout') ORDER BY name`;
    const sessionSettings = (await client.query<{ setting: string }>(settings)).rows;
    await client.query('BEGIN');
    await client.query({ text: WRITE.deadline.text, values: [String((await serverNow()) + 60_000)] });
    for (const { setting } of (await client.query<{ setting: string }>(settings)).rows) {
      expect(Number(setting)).toBeGreaterThan(50_000);
      expect(Number(setting)).toBeLessThanOrEqual(60_000);
    }
    await client.query('ROLLBACK');
    // What is left bounds the statement: a sleep of 5 s is cancelled after 300 ms.
    await client.query('BEGIN');
    await client.query({ text: WRITE.deadline.text, values: [String((await serverNow()) + 300)] });
    const sleeping = Date.now();
    const cancelled = await client.query('SELECT pg_sleep(5)').catch((error: unknown) => error);
    expect((cancelled as { code?: string }).code).toBe('57014');
    expect(Date.now() - sleeping).toBeLessThan(2000);
    await client.query('ROLLBACK');
    // Past the deadline: an error, and the transaction is aborted, so its COMMIT rolls back.
    await client.query('BEGIN');
    await client.query(`CREATE TEMP TABLE late_probe (n int)`);
    const refused = await client
      .query({ text: WRITE.deadline.text, values: [String((await serverNow()) - 1)] })
      .catch((error: unknown) => error);
    expect((refused as { code?: string }).code).toBe('22012');
    expect((await client.query('COMMIT')).command).toBe('ROLLBACK');
    expect((await client.query(`SELECT to_regclass('pg_temp.late_probe') AS probe`)).rows[0]?.probe).toBeNull();
    expect((await client.query<{ setting: string }>(settings)).rows).toEqual(sessionSettings);
  } finally {
    await client.end();
  }
});
