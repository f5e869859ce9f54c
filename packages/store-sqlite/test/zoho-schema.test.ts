import { join } from 'node:path';
import { OAuthToken, UserSignature } from '@crm/core';
import Database from 'better-sqlite3';
import { SQLiteTokenStore } from '../src/index.js';
import { removeTempFolders, storeError, tempFolder, ZOHO_CREATE_TABLE, ZOHO_INSERT } from './helpers.js';

afterEach(removeTempFolders);

/** A database as Zoho's sample leaves it: its exact CREATE TABLE, ids "1" and "2", expiry as text. */
function zohoDatabase(): string {
  const filename = join(tempFolder(), 'zohooauth.db');
  const database = new Database(filename);
  database.exec(ZOHO_CREATE_TABLE);
  const insert = database.prepare(ZOHO_INSERT);
  insert.run(
    '1',
    'ann@example.com:111',
    'client-1',
    'secret-1',
    'refresh-1',
    'access-1',
    null,
    '1732800000000',
    'https://example.com/cb',
    'https://www.zohoapis.com',
  );
  insert.run('2', null, 'client-2', 'secret-2', null, null, 'grant-2', null, 'https://example.com/cb', null);
  database.close();
  return filename;
}

/** What the sample's `select * from oauthtoken` returns: tuples, read by position. */
function zohoRows(filename: string): unknown[][] {
  const database = new Database(filename, { readonly: true });
  try {
    return database.prepare('select * from oauthtoken').raw().all() as unknown[][];
  } finally {
    database.close();
  }
}

describe("a database made by Zoho's SQLite sample", () => {
  test('its rows read as tokens, expiry text as epoch milliseconds', async () => {
    const store = new SQLiteTokenStore({ filename: zohoDatabase() });
    const ann = await store.findTokenById('1');
    expect(ann?.toFields()).toEqual({
      id: '1',
      userSignature: new UserSignature('ann@example.com:111'),
      clientId: 'client-1',
      clientSecret: 'secret-1',
      refreshToken: 'refresh-1',
      accessToken: 'access-1',
      grantToken: null,
      expiryTime: 1732800000000,
      redirectUrl: 'https://example.com/cb',
      apiDomain: 'https://www.zohoapis.com',
    });
    const byUser = await store.findToken(new OAuthToken({ userSignature: new UserSignature('ann@example.com:111') }));
    expect(byUser?.refreshToken).toBe('refresh-1');
    const byGrant = await store.findToken(new OAuthToken({ grantToken: 'grant-2', clientId: 'client-2', clientSecret: 'secret-2' }));
    expect(byGrant?.id).toBe('2');
    expect((await store.getTokens()).map((token) => token.id).sort()).toEqual(['1', '2']);
    await store.close();
  });

  test('saves update its rows in place and add rows the sample reads back by position', async () => {
    const filename = zohoDatabase();
    const store = new SQLiteTokenStore({ filename });
    const refreshed = new OAuthToken({
      userSignature: new UserSignature('ann@example.com:111'),
      accessToken: 'access-1b',
      expiryTime: 1732803600000,
    });
    await store.saveToken(refreshed);
    expect(refreshed.id).toBe('1');
    expect(refreshed.refreshToken).toBe('refresh-1');
    const bob = new OAuthToken({
      userSignature: new UserSignature('bob@example.com:222'),
      clientId: 'client-3',
      clientSecret: 'secret-3',
      refreshToken: 'refresh-3',
      expiryTime: 1732807200000,
    });
    await store.saveToken(bob);
    await store.close();

    const rows = zohoRows(filename);
    expect(rows).toHaveLength(3);
    const byId = new Map(rows.map((row) => [row[0], row]));
    expect(byId.get('1')).toEqual([
      '1',
      'ann@example.com:111',
      'client-1',
      'secret-1',
      'refresh-1',
      'access-1b',
      null,
      '1732803600000',
      'https://example.com/cb',
      'https://www.zohoapis.com',
    ]);
    expect(byId.get(bob.id)).toEqual([
      bob.id,
      'bob@example.com:222',
      'client-3',
      'secret-3',
      'refresh-3',
      null,
      null,
      '1732807200000',
      null,
      null,
    ]);
    expect(bob.id).toMatch(/^[A-Za-z0-9]{10}$/); // fits Zoho's varchar(10)
  });

  test('the missing indexes are added, and the lookups use them', () => {
    const filename = zohoDatabase();
    new SQLiteTokenStore({ filename }).close();
    const database = new Database(filename, { readonly: true });
    const indexes = database.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'oauthtoken'").all() as {
      name: string;
      sql: string | null;
    }[];
    expect(indexes.map((index) => index.name).sort()).toEqual([
      'oauthtoken_access_token',
      'oauthtoken_grant_token',
      'oauthtoken_refresh_token',
      'oauthtoken_user_name',
      'sqlite_autoindex_oauthtoken_1', // Zoho's primary key already makes id unique: no second index
    ]);
    expect(indexes.find((index) => index.name === 'oauthtoken_user_name')?.sql).toContain('UNIQUE');
    const plan = (query: string) =>
      (database.prepare(`EXPLAIN QUERY PLAN ${query}`).all('x') as { detail: string }[]).map((step) => step.detail).join();
    expect(plan("SELECT * FROM oauthtoken WHERE user_name = ? AND user_name <> '' LIMIT 1")).toContain('USING INDEX oauthtoken_user_name');
    for (const column of ['access_token', 'grant_token', 'refresh_token']) {
      expect(plan(`SELECT * FROM oauthtoken WHERE ${column} = ? LIMIT 1`)).toContain(`USING INDEX oauthtoken_${column}`);
    }
    database.close();
  });

  test('a table that already holds one user name twice is a CONFLICT at open, and nothing is dropped or changed', async () => {
    const filename = zohoDatabase();
    const database = new Database(filename);
    database.prepare(ZOHO_INSERT).run('3', 'ann@example.com:111', 'client-1', 'secret-1', 'refresh-9', null, null, null, null, null);
    database.close();
    const error = await storeError(() => new SQLiteTokenStore({ filename }), 'CONFLICT');
    expect(error.operation).toBe('migrate');
    expect(error.message).toContain('user_name');
    expect(error.message).not.toContain('ann@example.com');
    expect(zohoRows(filename)).toHaveLength(3);
    const check = new Database(filename, { readonly: true });
    expect(check.prepare("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name LIKE 'oauthtoken_%'").pluck().get()).toBe(0);
    check.close();
  });

  test('empty user names (how some writers store "no user") may repeat and never match', async () => {
    const filename = zohoDatabase();
    const database = new Database(filename);
    database.prepare(ZOHO_INSERT).run('3', '', null, null, null, 'access-3', null, '', '', '');
    database.prepare(ZOHO_INSERT).run('4', '', null, null, null, 'access-4', null, '', '', '');
    database.close();
    const store = new SQLiteTokenStore({ filename });
    const token = await store.findTokenById('3');
    expect(token?.userSignature).toBeNull();
    expect(token?.expiryTime).toBeNull();
    expect(await store.findToken(new OAuthToken({ accessToken: 'access-4' }))).not.toBeNull();
    await store.close();
  });

  test('an update writes only the columns it changes; the rest keep their stored text', async () => {
    const filename = zohoDatabase();
    const database = new Database(filename);
    database.prepare(ZOHO_INSERT).run('3', 'carl', 'client-3', 'secret-3', 'refresh-3', 'access-3', '', ' 1732800000000', '', '');
    const store = new SQLiteTokenStore({ database });
    await store.saveToken(
      new OAuthToken({ userSignature: new UserSignature('carl'), accessToken: 'access-3b', expiryTime: 1732803600000 }),
    );
    expect(database.prepare("SELECT * FROM oauthtoken WHERE id = '3'").raw().get()).toEqual([
      '3',
      'carl',
      'client-3',
      'secret-3',
      'refresh-3',
      'access-3b',
      '',
      '1732803600000',
      '',
      '',
    ]);
    await store.close();
    database.close();
  });

  test('a table from before api_domain gets the column, rows kept', async () => {
    const filename = join(tempFolder(), 'old.db');
    const database = new Database(filename);
    database.exec(ZOHO_CREATE_TABLE.replace(', api_domain varchar(255)', ''));
    database.prepare('insert into oauthtoken values (?,?,?,?,?,?,?,?,?)').run('1', 'ann', 'c', 's', 'r', null, null, '5', null);
    database.close();
    const store = new SQLiteTokenStore({ filename });
    await store.saveToken(
      new OAuthToken({ userSignature: new UserSignature('ann'), apiDomain: 'https://www.zohoapis.eu', accessToken: 'a' }),
    );
    expect((await store.findTokenById('1'))?.toFields()).toMatchObject({
      refreshToken: 'r',
      expiryTime: 5,
      apiDomain: 'https://www.zohoapis.eu',
    });
    await store.close();
  });

  test('a table without a primary key gets a unique index on id, or a CONFLICT when ids repeat', async () => {
    const noKey = ZOHO_CREATE_TABLE.replace(', primary key (id)', '');
    const unique = join(tempFolder(), 'unique.db');
    const uniqueDatabase = new Database(unique);
    uniqueDatabase.exec(noKey);
    uniqueDatabase.prepare(ZOHO_INSERT).run('1', 'ann', null, null, null, 'a', null, null, null, null);
    new SQLiteTokenStore({ database: uniqueDatabase }).close();
    expect(uniqueDatabase.prepare("SELECT sql FROM sqlite_master WHERE name = 'oauthtoken_id'").pluck().get()).toContain('UNIQUE');
    uniqueDatabase.close();

    const repeated = join(tempFolder(), 'repeated.db');
    const repeatedDatabase = new Database(repeated);
    repeatedDatabase.exec(noKey);
    repeatedDatabase.prepare(ZOHO_INSERT).run('1', 'ann', null, null, null, 'a', null, null, null, null);
    repeatedDatabase.prepare(ZOHO_INSERT).run('1', 'bob', null, null, null, 'b', null, null, null, null);
    const error = await storeError(() => new SQLiteTokenStore({ database: repeatedDatabase }), 'CONFLICT');
    expect(error.message).toContain('same id');
    expect(repeatedDatabase.prepare('SELECT COUNT(*) FROM oauthtoken').pluck().get()).toBe(2);
    expect(repeatedDatabase.prepare("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index'").pluck().get()).toBe(0);
    repeatedDatabase.close();
  });

  test('a table that is not a token table is CORRUPT_DATA, untouched', async () => {
    const filename = join(tempFolder(), 'other.db');
    const database = new Database(filename);
    database.exec('CREATE TABLE oauthtoken (id TEXT PRIMARY KEY, payload TEXT)');
    database.close();
    const error = await storeError(() => new SQLiteTokenStore({ filename }), 'CORRUPT_DATA');
    expect(error.message).toContain('user_name');
  });

  test('a malformed row is CORRUPT_DATA without its values in the message', async () => {
    const filename = zohoDatabase();
    const database = new Database(filename);
    database.prepare(ZOHO_INSERT).run('3', 'carl', 'c', 'secret-carl', 'r', null, null, 'tomorrow', null, null);
    database.prepare(ZOHO_INSERT).run('4', 'dora', 'c', Buffer.from('secret-dora'), 'r', null, null, null, null, null);
    database.close();
    const store = new SQLiteTokenStore({ filename });
    const badExpiry = await storeError(() => store.findTokenById('3'), 'CORRUPT_DATA');
    expect(badExpiry.message).not.toMatch(/tomorrow|secret-carl/);
    await storeError(() => store.findToken(new OAuthToken({ userSignature: new UserSignature('dora') })), 'CORRUPT_DATA');
    await storeError(() => store.getTokens(), 'CORRUPT_DATA');
    // A save that would update the bad row fails the same way and leaves it as it was.
    await storeError(() => store.saveToken(new OAuthToken({ userSignature: new UserSignature('carl'), accessToken: 'a' })), 'CORRUPT_DATA');
    await store.close();
    expect(zohoRows(filename).find((row) => row[0] === '3')?.[5]).toBeNull();
  });
});
