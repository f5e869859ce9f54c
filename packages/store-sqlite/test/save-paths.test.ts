/**
 * The two ways a save runs: one `UPDATE` for a stored token found by user name (no id) or by id
 * (no user name), and planSave for everything else (inserts, renames by id, lookups by token), each checked
 * against the file with plain SQL.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OAuthToken, type OAuthTokenFields, UserSignature } from '@crm/core';
import Database from 'better-sqlite3';
import { SQLiteTokenStore } from '../src/index.js';

let folder: string;
let database: Database.Database;
let store: SQLiteTokenStore;

beforeEach(() => {
  folder = mkdtempSync(join(tmpdir(), 'crm-sqlite-paths-'));
  database = new Database(join(folder, 'tokens.db'));
  store = new SQLiteTokenStore({ database });
});

afterEach(async () => {
  await store.close();
  database.close();
  rmSync(folder, { recursive: true, force: true });
});

const fullToken = (name: string) =>
  new OAuthToken({
    userSignature: new UserSignature(name),
    clientId: '1000.CLIENT',
    clientSecret: `secret-${name}`,
    refreshToken: `refresh-${name}`,
    accessToken: `access-${name}`,
    grantToken: `grant-${name}`,
    expiryTime: 1700000000000,
    redirectUrl: 'https://app.example.com/callback',
    apiDomain: 'https://www.zohoapis.eu',
  });

const rows = () => database.prepare('SELECT * FROM oauthtoken ORDER BY user_name').all();

describe('a refreshed access token, saved in one statement', () => {
  test.each([
    ['by user name', (stored: OAuthToken) => ({ userSignature: stored.userSignature })],
    ['by id, as TokenManager saves it', (stored: OAuthToken) => ({ id: stored.id, apiDomain: 'https://www.zohoapis.com' })],
  ])('%s: only the given columns change, every absent one keeps its stored value', async (_, target) => {
    const stored = fullToken('refresh@example.com:1');
    await store.saveToken(stored);
    const other = fullToken('other@example.com:1');
    await store.saveToken(other);
    const before = rows();

    const refreshed = new OAuthToken({ ...target(stored), accessToken: 'access-new', expiryTime: 1800000000000 });
    await store.saveToken(refreshed);

    const expected = { ...stored.toFields(), ...refreshed.toFields(), id: stored.id, userSignature: stored.userSignature };
    expect(refreshed.toFields()).toEqual(expected);
    expect(rows()).toEqual([
      before[0],
      {
        id: stored.id,
        user_name: 'refresh@example.com:1',
        client_id: '1000.CLIENT',
        client_secret: 'secret-refresh@example.com:1',
        refresh_token: 'refresh-refresh@example.com:1',
        access_token: 'access-new',
        grant_token: 'grant-refresh@example.com:1',
        expiry_time: '1800000000000',
        redirect_url: 'https://app.example.com/callback',
        api_domain: expected.apiDomain,
      },
    ]);
    expect((await store.findToken(new OAuthToken({ accessToken: 'access-new' })))?.id).toBe(stored.id);
  });

  test('a stored row that cannot be read back is CORRUPT_DATA, and the update is rolled back', async () => {
    const stored = fullToken('corrupt@example.com:1');
    await store.saveToken(stored);
    database.prepare("UPDATE oauthtoken SET expiry_time = 'soon' WHERE id = ?").run(stored.id);
    const before = rows();
    for (const token of [
      new OAuthToken({ userSignature: stored.userSignature, accessToken: 'access-never' }),
      new OAuthToken({ id: stored.id, accessToken: 'access-never' }),
    ]) {
      await expect(store.saveToken(token)).rejects.toMatchObject({ code: 'CORRUPT_DATA', operation: 'saveToken' });
      expect(token.accessToken).toBe('access-never');
      expect(rows()).toEqual(before);
    }
  });

  test('without the unique index, of two rows with one user name only the one findToken returns is updated', async () => {
    await store.close();
    database.exec('DROP TABLE oauthtoken');
    database.exec(
      'CREATE TABLE oauthtoken (id TEXT NOT NULL PRIMARY KEY, user_name TEXT, client_id TEXT, client_secret TEXT, refresh_token TEXT, ' +
        'access_token TEXT, grant_token TEXT, expiry_time TEXT, redirect_url TEXT, api_domain TEXT)',
    );
    const insert = database.prepare("INSERT INTO oauthtoken (id, user_name, access_token) VALUES (?, 'twin@example.com:1', ?)");
    insert.run('first00000', 'access-first');
    insert.run('second0000', 'access-second');
    store = new SQLiteTokenStore({ database, createSchema: false });
    const found = await store.findToken(new OAuthToken({ userSignature: new UserSignature('twin@example.com:1') }));
    const update = new OAuthToken({ userSignature: new UserSignature('twin@example.com:1'), accessToken: 'access-new' });
    await store.saveToken(update);
    expect(update.id).toBe(found?.id);
    const accessTokens = database.prepare('SELECT id, access_token FROM oauthtoken ORDER BY id').all();
    expect(accessTokens).toEqual([
      { id: 'first00000', access_token: found?.id === 'first00000' ? 'access-new' : 'access-first' },
      { id: 'second0000', access_token: found?.id === 'second0000' ? 'access-new' : 'access-second' },
    ]);
  });
});

/**
 * Each kind of stored row that findToken reports as CORRUPT_DATA, written by something other than the store:
 * the SQL that spoils it, the field a save would supply for the spoiled column (null when no save on that
 * path can), and the paths that still reach the row (a row without an id is found by user name only, a
 * user name with a NUL by id only). A lone UTF-16 surrogate cannot be stored: better-sqlite3 reads such
 * bytes back as U+FFFD.
 */
const corruptions: [string, string, OAuthTokenFields | null, ('user name' | 'id')[]][] = [
  ['expiry_time not a number', "expiry_time = 'not-a-number'", { expiryTime: 1800000000000 }, ['user name', 'id']],
  ['expiry_time out of range', "expiry_time = '99999999999999999'", { expiryTime: 1800000000000 }, ['user name', 'id']],
  ['a NUL in access_token', "access_token = 'access' || char(0) || 'x'", { accessToken: 'access-supplied' }, ['user name', 'id']],
  ['client_secret a blob', "client_secret = X'00ff'", { clientSecret: 'secret-supplied' }, ['user name', 'id']],
  ['a NUL in api_domain', "api_domain = 'https://' || char(0)", { apiDomain: 'https://www.zohoapis.com' }, ['user name', 'id']],
  ['no id', "id = ''", null, ['user name']],
  // Supplying the user name with the id is a rename, planned in full: it must fail the same way.
  ['a NUL in user_name', 'user_name = user_name || char(0)', { userSignature: new UserSignature('renamed@example.com:1') }, ['id']],
];

describe('a stored row that cannot be read is CORRUPT_DATA on save and never overwritten', () => {
  const cases = corruptions.flatMap(([kind, spoil, supplied, paths]) =>
    paths.flatMap((path) => [
      [`${kind}, saved by ${path}, not supplying the column`, spoil, path, null] as const,
      ...(supplied === null ? [] : [[`${kind}, saved by ${path}, supplying the column`, spoil, path, supplied] as const]),
    ]),
  );

  test.each(cases)('%s', async (_title, spoil, path, supplied) => {
    const stored = fullToken('spoiled@example.com:1');
    await store.saveToken(stored);
    await store.saveToken(fullToken('other@example.com:1'));
    expect(database.prepare(`UPDATE oauthtoken SET ${spoil} WHERE id = ?`).run(stored.id).changes).toBe(1);
    const raw = () => database.prepare('SELECT rowid, * FROM oauthtoken ORDER BY rowid').all();
    const before = raw();
    const target = path === 'id' ? { id: stored.id } : { userSignature: stored.userSignature };
    const find = path === 'id' ? store.findTokenById(stored.id as string) : store.findToken(new OAuthToken(target));
    await expect(find).rejects.toMatchObject({ code: 'CORRUPT_DATA' });

    // A save needs one of the three tokens; a refresh token when the access token is the spoiled column.
    const fields = supplied !== null && 'accessToken' in supplied ? {} : { refreshToken: 'refresh-never' };
    const token = new OAuthToken({ ...target, ...fields, ...(supplied ?? {}) });
    const given = token.toFields();
    await expect(store.saveToken(token)).rejects.toMatchObject({ code: 'CORRUPT_DATA', operation: 'saveToken' });
    expect(raw()).toEqual(before);
    expect(token.toFields()).toEqual(given);
  });
});

describe('saves that need the full plan', () => {
  test('a new user is inserted whole, with a fresh id', async () => {
    const token = fullToken('new@example.com:1');
    await store.saveToken(token);
    expect(token.id).toMatch(/^[A-Za-z0-9]{10}$/);
    expect((await store.findTokenById(token.id as string))?.toFields()).toEqual(token.toFields());
  });

  test('an id that is not stored, without user name, falls back to the findToken rules (here: the access token)', async () => {
    const stored = fullToken('byaccess@example.com:1');
    await store.saveToken(stored);
    const update = new OAuthToken({ id: 'not-stored', accessToken: stored.accessToken, apiDomain: 'https://www.zohoapis.com' });
    await store.saveToken(update);
    expect(update.toFields()).toEqual({ ...stored.toFields(), apiDomain: 'https://www.zohoapis.com' });
    expect(rows()).toHaveLength(1);
  });

  test('an id with a user name renames by id, and a rename onto another user is CONFLICT with nothing changed', async () => {
    const first = fullToken('first@example.com:1');
    const second = fullToken('second@example.com:1');
    await store.saveToken(first);
    await store.saveToken(second);
    const before = rows();
    const rename = new OAuthToken({ id: first.id, userSignature: second.userSignature, accessToken: 'access-never' });
    await expect(store.saveToken(rename)).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(rows()).toEqual(before);
    const free = new OAuthToken({ id: first.id, userSignature: new UserSignature('renamed@example.com:1'), accessToken: 'access-renamed' });
    await store.saveToken(free);
    expect(free.toFields()).toEqual({ ...first.toFields(), userSignature: free.userSignature, accessToken: 'access-renamed' });
  });
});

describe("the write-back is what the row holds, whatever its columns' types", () => {
  // A team's own table, where client_id has NUMERIC affinity: SQLite stores the text '0123' as the integer 123.
  const numericClientId = (db: Database.Database) =>
    db.exec(
      'CREATE TABLE oauthtoken (id varchar(10) NOT NULL PRIMARY KEY, user_name varchar(255), client_id NUMERIC, client_secret varchar(255), ' +
        'refresh_token varchar(255), access_token varchar(255), grant_token varchar(255), expiry_time INTEGER, redirect_url varchar(255), api_domain varchar(255))',
    );

  test.each([
    ['by user name', (stored: OAuthToken) => ({ userSignature: stored.userSignature })],
    ['by id', (stored: OAuthToken) => ({ id: stored.id })],
  ])('%s: a value the column changes is CORRUPT_DATA, with the row left as it was', async (_, target) => {
    const own = new Database(join(folder, 'numeric.db'));
    try {
      numericClientId(own);
      const numericStore = new SQLiteTokenStore({ database: own });
      const stored = new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'a', clientId: '1000.ABC', expiryTime: 5 });
      await numericStore.saveToken(stored);
      const before = own.prepare('SELECT * FROM oauthtoken').all();

      const changed = new OAuthToken({ ...target(stored), accessToken: 'b', clientId: '0123', expiryTime: 6 });
      await expect(numericStore.saveToken(changed)).rejects.toMatchObject({ code: 'CORRUPT_DATA' });
      expect(own.prepare('SELECT * FROM oauthtoken').all()).toEqual(before);

      // A value the column keeps as given is saved, and written back as stored.
      const kept = new OAuthToken({ ...target(stored), accessToken: 'c', clientId: '1000.XYZ', expiryTime: 7 });
      await numericStore.saveToken(kept);
      expect(kept.toFields()).toMatchObject({ id: stored.id, clientId: '1000.XYZ', accessToken: 'c', expiryTime: 7 });
      expect(await numericStore.findTokenById(stored.id as string)).toEqual(kept);
      await numericStore.close();
    } finally {
      own.close();
    }
  });

  test('a new token or a rename whose value the column changes is CORRUPT_DATA too, with nothing written', async () => {
    const own = new Database(join(folder, 'numeric-insert.db'));
    try {
      numericClientId(own);
      const numericStore = new SQLiteTokenStore({ database: own });
      await expect(
        numericStore.saveToken(new OAuthToken({ userSignature: new UserSignature('bob'), accessToken: 'b', clientId: '0123' })),
      ).rejects.toMatchObject({ code: 'CORRUPT_DATA' });
      expect(own.prepare('SELECT COUNT(*) AS n FROM oauthtoken').get()).toEqual({ n: 0 });

      const ana = new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'a', clientId: '1000.ABC' });
      await numericStore.saveToken(ana);
      expect(ana.clientId).toBe('1000.ABC');
      const before = own.prepare('SELECT * FROM oauthtoken').all();
      const rename = new OAuthToken({ id: ana.id, userSignature: new UserSignature('carol'), accessToken: 'c', clientId: '0456' });
      await expect(numericStore.saveToken(rename)).rejects.toMatchObject({ code: 'CORRUPT_DATA' });
      expect(own.prepare('SELECT * FROM oauthtoken').all()).toEqual(before);
      await numericStore.close();
    } finally {
      own.close();
    }
  });

  test('a table rebuilt with a numeric column while the store is open is noticed before the next save', async () => {
    const stored = fullToken('ana');
    await store.saveToken(stored);
    // Another connection rebuilds the table: same rows, client_id now NUMERIC.
    const other = new Database(join(folder, 'tokens.db'));
    other.exec(`
      BEGIN;
      CREATE TABLE rebuilt (id varchar(10) NOT NULL PRIMARY KEY, user_name varchar(255), client_id NUMERIC, client_secret varchar(255),
        refresh_token varchar(255), access_token varchar(255), grant_token varchar(255), expiry_time INTEGER, redirect_url varchar(255), api_domain varchar(255));
      INSERT INTO rebuilt SELECT id, user_name, client_id, client_secret, refresh_token, access_token, grant_token, expiry_time, redirect_url, api_domain FROM oauthtoken;
      DROP TABLE oauthtoken;
      ALTER TABLE rebuilt RENAME TO oauthtoken;
      CREATE UNIQUE INDEX oauthtoken_user_name ON oauthtoken (user_name) WHERE user_name IS NOT NULL AND user_name <> '';
      COMMIT;`);
    other.close();
    const before = rows();
    const refresh = new OAuthToken({ id: stored.id, accessToken: 'access-0123', clientId: '0123' });
    await expect(store.saveToken(refresh)).rejects.toMatchObject({ code: 'CORRUPT_DATA' });
    expect(rows()).toEqual(before);
    const kept = new OAuthToken({ id: stored.id, accessToken: 'access-kept' });
    await store.saveToken(kept);
    expect(await store.findTokenById(stored.id as string)).toEqual(kept);
  });

  test('an INTEGER expiry_time reads back as the number saved', async () => {
    const own = new Database(join(folder, 'integer.db'));
    try {
      own.exec(
        'CREATE TABLE oauthtoken (id varchar(10) NOT NULL PRIMARY KEY, user_name varchar(255), client_id varchar(255), client_secret varchar(255), ' +
          'refresh_token varchar(255), access_token varchar(255), grant_token varchar(255), expiry_time INTEGER, redirect_url varchar(255), api_domain varchar(255))',
      );
      const integerStore = new SQLiteTokenStore({ database: own });
      const stored = new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'a', expiryTime: 5 });
      await integerStore.saveToken(stored);
      const refreshed = new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'b', expiryTime: 1800000000000 });
      await integerStore.saveToken(refreshed);
      expect(refreshed.toFields()).toMatchObject({ id: stored.id, accessToken: 'b', expiryTime: 1800000000000 });
      expect(await integerStore.findTokenById(stored.id as string)).toEqual(refreshed);
      expect(own.prepare('SELECT typeof(expiry_time) AS type FROM oauthtoken').get()).toEqual({ type: 'integer' });
      await integerStore.close();
    } finally {
      own.close();
    }
  });
});
