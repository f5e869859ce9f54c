/**
 * The common saves run the plan of a hand-written UPDATE (by id, by user name) and every write is one round
 * trip (BEGIN, timeouts, the statement and COMMIT sent together). Each branch of the save statement against
 * rows read back raw, the plans it runs, and the round trips counted on the wire by a proxy in front of the server.
 */
import { OAuthToken, TokenStoreError, UserSignature } from '@crm/core';
import pg from 'pg';
import { PostgresTokenStore } from '../src/index.js';
import { buildSql } from '../src/sql.js';
import { adminQuery, dropTable, errorCode, postgresUrl, randomTable, TEST_SCHEMA } from './conformance-options.js';
import { startProxy } from './proxy.js';

let url: string;
const tables: string[] = [];

beforeAll(async () => {
  url = await postgresUrl();
});

afterAll(async () => {
  for (const table of tables) await dropTable(url, TEST_SCHEMA, table);
});

function openStore(options: { pool?: pg.Pool; url?: string; poolConfig?: pg.PoolConfig } = {}): PostgresTokenStore {
  const table = randomTable('fast');
  tables.push(table);
  return options.pool === undefined
    ? new PostgresTokenStore({ url: options.url ?? url, schema: TEST_SCHEMA, table, poolConfig: options.poolConfig ?? {} })
    : new PostgresTokenStore({ pool: options.pool, schema: TEST_SCHEMA, table });
}

async function rawRows(store: PostgresTokenStore): Promise<Array<Record<string, string | null>>> {
  return adminQuery(
    url,
    `SELECT id, user_name, client_id, client_secret, refresh_token, access_token, grant_token, expiry_time::text, redirect_url, api_domain FROM ${store.qualifiedTable} ORDER BY id`,
  );
}

const full = (name: string) =>
  new OAuthToken({
    userSignature: new UserSignature(name),
    clientId: `client-${name}`,
    clientSecret: `secret-${name}`,
    refreshToken: `refresh-${name}`,
    accessToken: `access-${name}`,
    grantToken: `grant-${name}`,
    expiryTime: 1_700_000_000_000,
    redirectUrl: 'https://app.example.com/callback',
    apiDomain: 'https://www.zohoapis.com',
  });

describe('the save statement, branch by branch', () => {
  test('by user name: present fields replace, absent ones keep every stored value, the id stays', async () => {
    const store = openStore();
    const stored = full('ana@x:1');
    await store.saveToken(stored);
    const before = await rawRows(store);
    const refreshed = new OAuthToken({
      userSignature: new UserSignature('ana@x:1'),
      accessToken: 'access-new',
      expiryTime: 1_800_000_000_000,
    });
    await store.saveToken(refreshed);
    const after = await rawRows(store);
    expect(after).toEqual([{ ...before[0], access_token: 'access-new', expiry_time: '1800000000000' }]);
    // Write-back: the object holds exactly what is stored, id included.
    expect(refreshed.id).toBe(stored.id);
    expect(refreshed.refreshToken).toBe('refresh-ana@x:1');
    expect(refreshed.clientSecret).toBe('secret-ana@x:1');
    expect(refreshed.grantToken).toBe('grant-ana@x:1');
    expect(refreshed.apiDomain).toBe('https://www.zohoapis.com');
    await store.close();
  });

  test('by id (TokenManager refresh): merges into the row with that id, even when its access token matches another row', async () => {
    const store = openStore();
    const ana = full('ana@x:1');
    const bob = full('bob@x:1');
    await store.saveToken(ana);
    await store.saveToken(bob);
    // The new access token is bob's current one: rule 2 would match bob, but the id comes first.
    const refresh = new OAuthToken({ id: ana.id, accessToken: 'access-bob@x:1', expiryTime: 5, apiDomain: 'https://www.zohoapis.eu' });
    await store.saveToken(refresh);
    const rows = await rawRows(store);
    const anaRow = rows.find((row) => row.id === ana.id);
    const bobRow = rows.find((row) => row.id === bob.id);
    expect(anaRow).toMatchObject({
      user_name: 'ana@x:1',
      access_token: 'access-bob@x:1',
      expiry_time: '5',
      api_domain: 'https://www.zohoapis.eu',
      refresh_token: 'refresh-ana@x:1',
    });
    expect(bobRow).toMatchObject({ access_token: 'access-bob@x:1', expiry_time: '1700000000000', api_domain: 'https://www.zohoapis.com' });
    expect(refresh.userSignature?.name).toBe('ana@x:1');
    expect(refresh.clientSecret).toBe('secret-ana@x:1');
    await store.close();
  });

  test('an id that is not stored falls back to the findToken rules; the stored id stays and is written back', async () => {
    const store = openStore();
    const ana = full('ana@x:1');
    await store.saveToken(ana);
    const byAccess = new OAuthToken({ id: 'NotStored1', accessToken: 'access-ana@x:1', expiryTime: 7 });
    await store.saveToken(byAccess);
    expect(byAccess.id).toBe(ana.id);
    expect(await rawRows(store)).toEqual([expect.objectContaining({ id: ana.id, expiry_time: '7', refresh_token: 'refresh-ana@x:1' })]);
    // With a user name too: the row with that user name, keeping its id.
    const byName = new OAuthToken({ id: 'NotStored2', userSignature: new UserSignature('ana@x:1'), refreshToken: 'refresh-2' });
    await store.saveToken(byName);
    expect(byName.id).toBe(ana.id);
    expect(await rawRows(store)).toEqual([
      expect.objectContaining({ id: ana.id, refresh_token: 'refresh-2', access_token: 'access-ana@x:1' }),
    ]);
    // Nothing matches: an insert that keeps the given id.
    const fresh = new OAuthToken({ id: 'GivenId001', accessToken: 'access-new', clientId: 'c', clientSecret: 's' });
    await store.saveToken(fresh);
    expect(fresh.id).toBe('GivenId001');
    expect((await rawRows(store)).map((row) => row.id).sort()).toEqual([ana.id, 'GivenId001'].sort());
    await store.close();
  });

  test('a rename by id onto another user name is CONFLICT and changes nothing; a rename onto a free name moves the row', async () => {
    const store = openStore();
    const ana = full('ana@x:1');
    const bob = full('bob@x:1');
    await store.saveToken(ana);
    await store.saveToken(bob);
    const before = await rawRows(store);
    expect(
      await errorCode(store.saveToken(new OAuthToken({ id: ana.id, userSignature: new UserSignature('bob@x:1'), accessToken: 'x' }))),
    ).toBe('CONFLICT');
    expect(await rawRows(store)).toEqual(before);
    // The same connection goes on working after the failed pipeline (its transaction was rolled back).
    const renamed = new OAuthToken({ id: ana.id, userSignature: new UserSignature('carla@x:1'), accessToken: 'y' });
    await store.saveToken(renamed);
    expect((await rawRows(store)).find((row) => row.id === ana.id)).toMatchObject({
      user_name: 'carla@x:1',
      access_token: 'y',
      refresh_token: 'refresh-ana@x:1',
    });
    await store.close();
  });

  test('by refresh token with client credentials (rule 3): one of the matching rows is updated, never two', async () => {
    const store = openStore();
    await store.saveToken(new OAuthToken({ clientId: 'c', clientSecret: 's', refreshToken: 'shared', accessToken: 'a1' }));
    await store.saveToken(new OAuthToken({ id: 'SecondOne1', clientId: 'c', clientSecret: 's', refreshToken: 'other', accessToken: 'a2' }));
    await adminQuery(url, `UPDATE ${store.qualifiedTable} SET refresh_token = 'shared'`); // two rows now match
    const saved = new OAuthToken({ clientId: 'c', clientSecret: 's', refreshToken: 'shared', accessToken: 'a3' });
    await store.saveToken(saved);
    const rows = await rawRows(store);
    expect(rows).toHaveLength(2);
    expect(rows.filter((row) => row.access_token === 'a3')).toHaveLength(1);
    expect(rows.find((row) => row.access_token === 'a3')?.id).toBe(saved.id);
    await store.close();
  });
});

test('the common saves use the primary key and the user-name index, in generic plans too (20,000 rows)', async () => {
  const store = openStore();
  await store.migrate();
  await adminQuery(
    url,
    `INSERT INTO ${store.qualifiedTable} (id, user_name, access_token, refresh_token)
     SELECT 'id' || g, 'u' || g, md5('a' || g), md5('r' || g) FROM generate_series(1, 20000) g;
     ANALYZE ${store.qualifiedTable}`,
  );
  const sql = buildSql(store.schema, store.table);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('SET plan_cache_mode = force_generic_plan');
    const plan = async (text: string, values: unknown[]) => {
      await client.query(`PREPARE checked AS ${text}`);
      try {
        const literals = values.map((value) => (value === null ? 'NULL' : client.escapeLiteral(String(value))));
        return (await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN EXECUTE checked(${literals.join(', ')})`)).rows
          .map((row) => row['QUERY PLAN'])
          .join('\n');
      } finally {
        await client.query('DEALLOCATE checked');
      }
    };
    const nulls = Array.from({ length: 10 }, () => null);
    const byUserName = await plan(sql.save({ hasId: false, field: 'userName', mergeOn: 'user_name' }).text, [...nulls, 'new-id', 'u5']);
    expect(byUserName).toMatch(
      new RegExp(`Update on ${store.table} stored[\\s\\S]*Index Scan using ${store.table}_user_uq on ${store.table} stored`),
    );
    const byId = await plan(sql.save({ hasId: true, field: 'accessToken', mergeOn: 'id' }).text, ['id5', ...nulls.slice(1), null, 'a']);
    expect(byId).toMatch(
      new RegExp(`Update on ${store.table} stored[\\s\\S]*Index Scan using ${store.table}_pkey on ${store.table} stored`),
    );
    const updateById = await plan(sql.updateById.text, ['id5', ...nulls.slice(1)]);
    expect(updateById).toMatch(
      new RegExp(`Update on ${store.table} stored[\\s\\S]*Index Scan using ${store.table}_pkey on ${store.table} stored`),
    );
    for (const text of [byUserName, byId, updateById]) expect(text).not.toMatch(/Seq Scan/);
  } finally {
    await client.end();
  }
  await store.close();
});

test('every write is one round trip (two when it fails: the ROLLBACK; two for an id that is not stored), every read one', async () => {
  const proxy = await startProxy(new URL(url));
  const pool = new pg.Pool({ connectionString: proxy.url, max: 1 });
  const store = openStore({ pool });
  try {
    await store.migrate();
    await store.saveToken(full('warm@x:1'));
    const roundTrips = async (operation: () => Promise<unknown>) => {
      const before = proxy.roundTrips();
      await operation().catch((error: unknown) => {
        if (!TokenStoreError.is(error)) throw error;
      });
      return proxy.roundTrips() - before;
    };
    const ana = full('ana@x:1');
    // Also the first save of a shape: its statement is prepared in the same round trip.
    expect(await roundTrips(() => store.saveToken(ana))).toBe(1); // an insert
    expect(await roundTrips(() => store.saveToken(full('bob@x:1')))).toBe(1);
    expect(
      await roundTrips(() => store.saveToken(new OAuthToken({ userSignature: new UserSignature('ana@x:1'), accessToken: 'n1' }))),
    ).toBe(1);
    expect(await roundTrips(() => store.saveToken(new OAuthToken({ id: ana.id, accessToken: 'n2', expiryTime: 1 })))).toBe(1);
    expect(await roundTrips(() => store.saveToken(new OAuthToken({ id: ana.id, accessToken: 'n3', expiryTime: 2 })))).toBe(1);
    // An id that is not stored: the update by id finds nothing, then the save statement inserts.
    expect(
      await roundTrips(() => store.saveToken(new OAuthToken({ id: 'NotStored9', accessToken: 'n5', clientId: 'c', clientSecret: 's' }))),
    ).toBe(2);
    expect(await store.findTokenById('NotStored9')).not.toBeNull();
    expect(await roundTrips(() => store.findToken(new OAuthToken({ userSignature: new UserSignature('ana@x:1') })))).toBe(1);
    expect(await roundTrips(() => store.findTokenById(ana.id as string))).toBe(1);
    const conflict = () => store.saveToken(new OAuthToken({ id: ana.id, userSignature: new UserSignature('bob@x:1'), accessToken: 'x' }));
    expect(await errorCode(conflict())).toBe('CONFLICT');
    expect(await roundTrips(conflict)).toBe(2);
    expect(await roundTrips(() => store.deleteToken(ana.id as string))).toBe(1);
    expect(await store.findTokenById(ana.id as string)).toBeNull();
    // The store's statements are pg's prepared statements too: sent by hand on the same connection, they are not prepared again.
    const sql = buildSql(store.schema, store.table);
    const byName = sql.save({ hasId: false, field: 'userName', mergeOn: 'user_name' });
    const values = [null, 'bob@x:1', null, null, null, 'by-hand', null, null, null, null, 'unused0000', 'bob@x:1'];
    expect((await pool.query({ name: byName.name, text: byName.text, values })).rows[0]).toMatchObject({ access_token: 'by-hand' });
    expect(
      await roundTrips(() => store.saveToken(new OAuthToken({ userSignature: new UserSignature('bob@x:1'), accessToken: 'n4' }))),
    ).toBe(1);
  } finally {
    await store.close();
    await pool.end();
    await proxy.close();
  }
});

test('close() ends operations still waiting for a connection of the store pool at once with STORE_CLOSED; the others complete', async () => {
  const store = openStore({ poolConfig: { max: 2 } });
  await store.migrate();
  const saves = Array.from({ length: 12 }, (_, index) => store.saveToken(full(`waiting${index}@x:1`)));
  await new Promise((resolve) => setImmediate(resolve)); // they have asked the pool for connections by now
  const closing = Date.now();
  await store.close();
  const outcomes = await Promise.allSettled(saves);
  expect(Date.now() - closing).toBeLessThan(store.operationTimeoutMs);
  const failures = outcomes.filter((outcome) => outcome.status === 'rejected').map((outcome) => (outcome as PromiseRejectedResult).reason);
  for (const failure of failures) expect(failure).toMatchObject({ code: 'STORE_CLOSED' });
  expect(failures.length).toBeGreaterThanOrEqual(10); // at most the two with a connection could run
  const stored = await adminQuery<{ n: number }>(url, `SELECT count(*)::int AS n FROM ${store.qualifiedTable}`);
  expect(stored[0]?.n).toBe(outcomes.length - failures.length);
});

test("with a pool in pg's own pipeline mode (pipeline: true) saves, conflicts and finds work the same", async () => {
  const pool = new pg.Pool({ connectionString: url, max: 1, pipeline: true });
  const store = openStore({ pool });
  try {
    const ana = full('ana@x:1');
    await store.saveToken(ana);
    await store.saveToken(full('bob@x:1'));
    const refreshed = new OAuthToken({ userSignature: new UserSignature('ana@x:1'), accessToken: 'access-new' });
    await store.saveToken(refreshed);
    expect(refreshed.id).toBe(ana.id);
    expect(refreshed.refreshToken).toBe('refresh-ana@x:1');
    const before = await rawRows(store);
    expect(
      await errorCode(store.saveToken(new OAuthToken({ id: ana.id, userSignature: new UserSignature('bob@x:1'), accessToken: 'x' }))),
    ).toBe('CONFLICT');
    expect(await rawRows(store)).toEqual(before);
    await store.saveToken(new OAuthToken({ id: ana.id, accessToken: 'by-id', expiryTime: 3 }));
    const found = await store.findToken(new OAuthToken({ userSignature: new UserSignature('ana@x:1') }));
    expect([found?.accessToken, found?.expiryTime, found?.clientSecret]).toEqual(['by-id', 3, 'secret-ana@x:1']);
    await store.deleteToken(ana.id as string);
    expect((await rawRows(store)).map((row) => row.user_name)).toEqual(['bob@x:1']);
  } finally {
    await store.close();
    await pool.end();
  }
});
