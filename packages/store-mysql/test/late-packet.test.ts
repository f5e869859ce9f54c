import { OAuthToken, TokenStoreError, UserSignature } from '@crm/core';
import { createConnection, type RowDataPacket } from 'mysql2/promise';
import { MySQLTokenStore } from '../src/index';
import { dropTable, mysqlUrl, randomTable } from './conformance-options';
import { HoldingProxy } from './holding-proxy';

const BOUND_MS = 1000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await promise.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(TokenStoreError.is(error) && error.code).toBe(code);
}

// A save whose statement reaches the server after the store's bound (a stalled network, a frozen server): the
// store has already reported BACKEND_UNAVAILABLE, so the server must not apply it when it reads it at last.
describe('a save that reaches the server after its bound', () => {
  let table: string;
  let proxy: HoldingProxy;
  let store: MySQLTokenStore;
  let admin: Awaited<ReturnType<typeof createConnection>>;

  beforeEach(async () => {
    table = randomTable('crm_late');
    const url = new URL(await mysqlUrl());
    proxy = await HoldingProxy.start(url.hostname || '127.0.0.1', Number(url.port || 3306));
    url.hostname = '127.0.0.1';
    url.port = String(proxy.port);
    store = new MySQLTokenStore({ url: url.toString(), table, operationTimeoutMs: BOUND_MS });
    admin = await createConnection(await mysqlUrl());
  });
  afterEach(async () => {
    await store.close();
    await proxy.close();
    await admin.end();
    await dropTable(table);
  });

  async function accessTokens(): Promise<string[]> {
    const [rows] = await admin.query<RowDataPacket[]>(`SELECT access_token FROM ${table} ORDER BY id`);
    return rows.map((row) => row.access_token as string);
  }

  /** Saves once by user name and once by id on the pooled connection: both statements are then prepared there. */
  async function warmUp(id: string, accessToken: string): Promise<void> {
    await store.saveToken(new OAuthToken({ userSignature: new UserSignature('ana'), accessToken }));
    await store.saveToken(new OAuthToken({ id, accessToken }));
  }

  /** Holds the next save's bytes past the bound, then lets the server read them, and waits for it to run them. */
  async function lateSave(token: OAuthToken): Promise<void> {
    proxy.hold();
    const started = performance.now();
    await expectCode(store.saveToken(token), 'BACKEND_UNAVAILABLE');
    expect(performance.now() - started).toBeGreaterThanOrEqual(BOUND_MS - 5);
    await sleep(300);
    const before = proxy.forwardedLate;
    proxy.release();
    expect(proxy.forwardedLate).toBeGreaterThan(before); // the statement did reach the server, late
    await sleep(700);
  }

  test('by user name: BACKEND_UNAVAILABLE, and the row stays as it was once the server runs the statement', async () => {
    const ana = new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'first' });
    await store.saveToken(ana);
    await warmUp(ana.id!, 'before');
    expect(await accessTokens()).toEqual(['before']);
    await lateSave(new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'late' }));
    expect(await accessTokens()).toEqual(['before']);
    // A new user arriving late is not inserted either.
    await warmUp(ana.id!, 'before');
    await lateSave(new OAuthToken({ userSignature: new UserSignature('bob'), accessToken: 'late-bob' }));
    expect(await accessTokens()).toEqual(['before']);
    // The store works on once the network does.
    await store.saveToken(new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'after' }));
    expect(await accessTokens()).toEqual(['after']);
  }, 20000);

  test('on a table whose BEFORE INSERT trigger fills in a missing id, a new user arriving late is not inserted either', async () => {
    await store.migrate();
    await admin.query(`CREATE TRIGGER ${table}_id BEFORE INSERT ON ${table} FOR EACH ROW SET NEW.id = IFNULL(NEW.id, LEFT(UUID(), 10))`);
    const ana = new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'first' });
    await store.saveToken(ana);
    await warmUp(ana.id!, 'before');
    await lateSave(new OAuthToken({ userSignature: new UserSignature('bob'), accessToken: 'late-bob' }));
    expect(await accessTokens()).toEqual(['before']);
    await lateSave(new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'late' }));
    expect(await accessTokens()).toEqual(['before']);
  }, 20000);

  test('by id: BACKEND_UNAVAILABLE, and the row stays as it was once the server runs the statement', async () => {
    const ana = new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'first' });
    await store.saveToken(ana);
    await warmUp(ana.id!, 'before');
    await lateSave(new OAuthToken({ id: ana.id, accessToken: 'late' }));
    expect(await accessTokens()).toEqual(['before']);
    await store.saveToken(new OAuthToken({ id: ana.id, accessToken: 'after' }));
    expect(await accessTokens()).toEqual(['after']);
  }, 20000);
});
