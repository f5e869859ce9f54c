import { createRequire } from 'node:module';
import { OAuthToken, TokenStoreError, UserSignature } from '@crm/core';
import { type Connection, createConnection, createPool, type RowDataPacket } from 'mysql2/promise';
import { MySQLTokenStore } from '../src/index';
import { dropTable, mysqlUrl, randomTable, zohoCreateTable } from './conformance-options';

let admin: Connection;
let table: string;
let store: MySQLTokenStore;

async function columnTypes(): Promise<Record<string, string>> {
  const [rows] = await admin.query<RowDataPacket[]>(
    'SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION',
    [table],
  );
  return Object.fromEntries(rows.map((row) => [row.COLUMN_NAME, row.COLUMN_TYPE]));
}

async function rawRows(): Promise<RowDataPacket[]> {
  const [rows] = await admin.query<RowDataPacket[]>(`SELECT * FROM ${table} ORDER BY id`);
  return rows;
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<TokenStoreError> {
  const error = await promise.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(TokenStoreError.is(error)).toBe(true);
  expect((error as TokenStoreError).code).toBe(code);
  return error as TokenStoreError;
}

beforeAll(async () => {
  admin = await createConnection(await mysqlUrl());
});
afterAll(async () => {
  await admin.end();
});
beforeEach(async () => {
  table = randomTable('crm_zoho');
  await admin.query(zohoCreateTable(table));
  store = new MySQLTokenStore({ url: await mysqlUrl(), table });
});
afterEach(async () => {
  await store.close();
  await dropTable(table);
});

describe("Zoho DBStore's table, unmigrated", () => {
  test('rows Zoho wrote are read: numeric text id, expiry text, NULL and empty columns', async () => {
    await admin.query(
      `INSERT INTO ${table} VALUES ('1', 'ana@zylker.com:111', 'cid', 'csec', 'r1', 'a1', NULL, '1700000000000', 'https://x.test/cb', '')`,
    );
    const found = await store.findToken(new OAuthToken({ userSignature: new UserSignature('ana@zylker.com:111') }));
    expect(found?.toFields()).toMatchObject({
      id: '1',
      clientId: 'cid',
      refreshToken: 'r1',
      expiryTime: 1700000000000,
      grantToken: null,
      apiDomain: null,
    });
    expect((await store.findTokenById('1'))?.accessToken).toBe('a1');
  });

  test('saves and updates without changing any column', async () => {
    const before = await columnTypes();
    const token = new OAuthToken({ userSignature: new UserSignature('ben'), accessToken: 'a', refreshToken: 'r', expiryTime: 5 });
    await store.saveToken(token);
    expect(token.id).toHaveLength(10);
    await store.saveToken(new OAuthToken({ userSignature: new UserSignature('ben'), accessToken: 'a2' }));
    expect(await rawRows()).toMatchObject([{ id: token.id, user_name: 'ben', access_token: 'a2', refresh_token: 'r', expiry_time: '5' }]);
    expect(await columnTypes()).toEqual(before);
  });

  test('a value too long for its varchar(255) column is VALUE_TOO_LONG naming column and limit; nothing is written', async () => {
    const token = new OAuthToken({ userSignature: new UserSignature('cy'), accessToken: 'a', refreshToken: 'r' });
    await store.saveToken(token);
    const before = await rawRows();
    const error = await expectCode(
      store.saveToken(new OAuthToken({ userSignature: new UserSignature('cy'), accessToken: 'x'.repeat(256), refreshToken: 'r2' })),
      'VALUE_TOO_LONG',
    );
    expect(error.message).toContain('access_token');
    expect(error.message).toContain('255');
    expect(error.message).not.toContain('xxxx');
    await expectCode(
      store.saveToken(new OAuthToken({ userSignature: new UserSignature('dee'), accessToken: 'é'.repeat(256) })),
      'VALUE_TOO_LONG',
    );
    await expectCode(store.saveToken(new OAuthToken({ id: '12345678901', accessToken: 'a' })), 'VALUE_TOO_LONG');
    expect(await rawRows()).toEqual(before);
    // 255 characters of a 2-byte letter fit: varchar counts characters.
    await store.saveToken(new OAuthToken({ userSignature: new UserSignature('dee'), accessToken: 'é'.repeat(255) }));
  });

  test('lookups are exact on its case-insensitive collation', async () => {
    await store.saveToken(new OAuthToken({ userSignature: new UserSignature('Ana'), accessToken: 'upper' }));
    await store.saveToken(new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'lower' }));
    await store.saveToken(new OAuthToken({ userSignature: new UserSignature('ana '), accessToken: 'padded' }));
    expect((await store.getTokens()).length).toBe(3);
    expect((await store.findToken(new OAuthToken({ userSignature: new UserSignature('ana') })))?.accessToken).toBe('lower');
    expect((await store.findToken(new OAuthToken({ userSignature: new UserSignature('Ana') })))?.accessToken).toBe('upper');
    expect(await store.findToken(new OAuthToken({ accessToken: 'UPPER' }))).toBeNull();
    const upper = await store.findToken(new OAuthToken({ userSignature: new UserSignature('Ana') }));
    await store.deleteToken(upper!.id!.toLowerCase() === upper!.id ? upper!.id!.toUpperCase() : upper!.id!.toLowerCase());
    expect((await store.getTokens()).length).toBe(3);
  });

  test("Zoho's own DBStore reads what this store wrote, and this store reads what DBStore wrote", async () => {
    const require = createRequire(__filename);
    const sdk = '@zohocrm/typescript-sdk-8.0/dist';
    const { DBStore } = require(`${sdk}/models/authenticator/store/db_store.js`);
    const { OAuthToken: ZohoToken } = require(`${sdk}/models/authenticator/oauth_token.js`);
    const { UserSignature: ZohoUser } = require(`${sdk}/routes/user_signature.js`);
    const url = new URL(await mysqlUrl());
    const zoho = new DBStore(url.hostname, url.pathname.slice(1), table, url.username || 'root', url.password, url.port || '3306');

    await store.saveToken(
      new OAuthToken({
        userSignature: new UserSignature('ours'),
        refreshToken: 'r-ours',
        clientId: 'c',
        clientSecret: 's',
        expiryTime: 42,
      }),
    );
    const zohoToken = new ZohoToken(null, null, null, null, null, null, null, new ZohoUser('ours'));
    const found = await zoho.findToken(zohoToken);
    expect(found.getRefreshToken()).toBe('r-ours');
    expect(found.getExpiresIn()).toBe('42');

    const written = new ZohoToken('c2', 's2', null, 'r-zoho', null, '7', null, new ZohoUser('theirs'));
    written.setAccessToken('a-zoho');
    written.setExpiresIn('99');
    await zoho.saveToken(written);
    const read = await store.findToken(new OAuthToken({ userSignature: new UserSignature('theirs') }));
    expect(read?.toFields()).toMatchObject({ id: '7', accessToken: 'a-zoho', refreshToken: 'r-zoho', clientId: 'c2', expiryTime: 99 });
  });
});

describe('never truncated silently, even when the column shrinks under a running store', () => {
  test.each(['strict', 'non-strict'])('%s sql_mode: the write is refused and nothing changes', async (mode) => {
    const pool = createPool({ uri: await mysqlUrl(), connectionLimit: 1 });
    pool.pool.on('connection', (connection) => {
      connection.query(mode === 'strict' ? "SET SESSION sql_mode = 'STRICT_ALL_TABLES'" : "SET SESSION sql_mode = ''");
    });
    const shrunk = new MySQLTokenStore({ pool, table });
    try {
      await shrunk.saveToken(new OAuthToken({ userSignature: new UserSignature('eve'), accessToken: 'short' }));
      await admin.query(`ALTER TABLE ${table} MODIFY access_token varchar(10)`);
      const before = await rawRows();
      const error = await expectCode(
        shrunk.saveToken(new OAuthToken({ userSignature: new UserSignature('eve'), accessToken: 'longer-than-ten' })),
        mode === 'strict' ? 'VALUE_TOO_LONG' : 'BACKEND_FAILURE',
      );
      expect(error.message).not.toContain('longer-than-ten');
      expect(await rawRows()).toEqual(before);
      // The store re-reads the columns after that refusal: the next attempt is refused before writing.
      await expectCode(
        shrunk.saveToken(new OAuthToken({ userSignature: new UserSignature('eve'), accessToken: 'longer-than-ten' })),
        'VALUE_TOO_LONG',
      );
    } finally {
      await shrunk.close();
      await pool.end();
    }
  });
});

describe('migrate() on Zoho DBStore table', () => {
  test('widens secrets, switches to exact collation, stores empty user names as NULL, adds the indexes; idempotent', async () => {
    await admin.query(`INSERT INTO ${table} (id, user_name, access_token) VALUES ('1', 'ana', 'a1'), ('2', '', 'a2'), ('3', '', 'a3')`);
    await store.findTokenById('1'); // the store is already in use: migrate must refresh what it knows
    await store.migrate();
    const types = await columnTypes();
    expect(types).toMatchObject({
      id: 'varchar(255)',
      user_name: 'varchar(255)',
      client_secret: 'mediumtext',
      access_token: 'mediumtext',
      refresh_token: 'mediumtext',
      grant_token: 'mediumtext',
    });
    const [indexes] = await admin.query<RowDataPacket[]>(
      'SELECT INDEX_NAME, NON_UNIQUE FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND SEQ_IN_INDEX = 1',
      [table],
    );
    expect(Object.fromEntries(indexes.map((index) => [index.INDEX_NAME, Number(index.NON_UNIQUE)]))).toMatchObject({
      PRIMARY: 0,
      crm_user_name: 0,
      crm_access_token: 1,
      crm_refresh_token: 1,
      crm_grant_token: 1,
    });
    expect((await rawRows()).map((row) => row.user_name)).toEqual(['ana', null, null]);
    // A long token now fits, and case variants of a user name are distinct under the unique index.
    await store.saveToken(new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'x'.repeat(70000) }));
    await store.saveToken(new OAuthToken({ userSignature: new UserSignature('ANA'), accessToken: 'b' }));
    expect((await store.findToken(new OAuthToken({ userSignature: new UserSignature('ana') })))?.accessToken).toHaveLength(70000);
    const [create] = await admin.query<RowDataPacket[]>(`SHOW CREATE TABLE ${table}`);
    await store.migrate();
    const [again] = await admin.query<RowDataPacket[]>(`SHOW CREATE TABLE ${table}`);
    expect(again[0]!['Create Table']).toBe(create[0]!['Create Table']);
  });

  test('two rows with one user name stop the migration with CONFLICT, table unchanged', async () => {
    await admin.query(`INSERT INTO ${table} (id, user_name, access_token) VALUES ('1', 'ana', 'a1'), ('2', 'ana', 'a2')`);
    const before = await columnTypes();
    await expectCode(store.migrate(), 'CONFLICT');
    expect(await columnTypes()).toEqual(before);
  });

  test('an old table without api_domain: operations say to migrate, migrate adds the column', async () => {
    await admin.query(`ALTER TABLE ${table} DROP COLUMN api_domain`);
    const error = await expectCode(store.getTokens(), 'BACKEND_FAILURE');
    expect(error.message).toContain('api_domain');
    await store.migrate();
    await store.saveToken(new OAuthToken({ accessToken: 'a', apiDomain: 'https://www.zohoapis.eu' }));
    expect((await store.getTokens())[0]?.apiDomain).toBe('https://www.zohoapis.eu');
  });
});

describe('a table this store creates', () => {
  test('createSchema: false leaves a missing table to migrate(); migrate creates it with the same schema', async () => {
    const name = randomTable('crm_own');
    const own = new MySQLTokenStore({ url: await mysqlUrl(), table: name, createSchema: false });
    try {
      const error = await expectCode(own.getTokens(), 'BACKEND_FAILURE');
      expect(error.message).toContain('migrate');
      await own.migrate();
      await own.saveToken(new OAuthToken({ accessToken: 'a' }));
      expect(await own.getTokens()).toHaveLength(1);
      const [rows] = await admin.query<RowDataPacket[]>(
        'SELECT COLUMN_NAME, COLUMN_TYPE, COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION',
        [name],
      );
      expect(rows.map((row) => row.COLUMN_NAME)).toEqual([
        'id',
        'user_name',
        'client_id',
        'client_secret',
        'refresh_token',
        'access_token',
        'grant_token',
        'expiry_time',
        'redirect_url',
        'api_domain',
      ]);
      expect(rows.find((row) => row.COLUMN_NAME === 'client_secret')?.COLUMN_TYPE).toBe('mediumtext');
    } finally {
      await own.close();
      await dropTable(name);
    }
  });
});
