import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { OAuthToken, TokenStoreError, type TokenStoreErrorCode, UserSignature } from '@crm/core';
import Database from 'better-sqlite3';
import { SQLiteTokenStore } from '../src/index.js';
import { toStoreError } from '../src/sqlite-store.js';

/** The exact statement of Zoho's SQLite sample (custom_store_sqlite.py), two spaces included. */
const ZOHO_CREATE_TABLE =
  'CREATE TABLE  oauthtoken (id varchar(10) NOT NULL,user_name varchar(255), client_id varchar(255), client_secret varchar(255), ' +
  'refresh_token varchar(255), access_token varchar(255), grant_token varchar(255), expiry_time varchar(20), redirect_url varchar(255), ' +
  'api_domain varchar(255), primary key (id))';

/** The sample's insert, with `?` parameters in its column order. */
const ZOHO_INSERT =
  'insert into oauthtoken (id,user_name,client_id,client_secret,refresh_token,access_token,grant_token,expiry_time,redirect_url,api_domain) ' +
  'values (?,?,?,?,?,?,?,?,?,?);';

const folders: string[] = [];

/** A new temporary folder, removed after the test. */
function tempFolder(): string {
  const folder = mkdtempSync(join(tmpdir(), 'crm-sqlite-test-'));
  folders.push(folder);
  return folder;
}

afterEach(() => {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

/** Runs `action` and returns the TokenStoreError it throws or rejects with; fails the test otherwise. */
async function storeError(action: () => unknown, code: TokenStoreErrorCode): Promise<TokenStoreError> {
  let thrown: unknown;
  try {
    await action();
  } catch (error) {
    thrown = error;
  }
  if (!TokenStoreError.is(thrown)) throw new Error(`expected a TokenStoreError ${code}, got ${String(thrown)}`);
  expect(thrown.code).toBe(code);
  expect(thrown.store).toBe('SQLiteTokenStore');
  return thrown;
}

/** Everything an error shows to a logger, causes and hidden properties included. */
const everything = (error: unknown) => inspect(error, { depth: Number.POSITIVE_INFINITY, showHidden: true });

const ann = (fields: ConstructorParameters<typeof OAuthToken>[0] = {}) =>
  new OAuthToken({ userSignature: new UserSignature('ann@example.com:1'), accessToken: 'access-ann', ...fields });

describe('options', () => {
  test('defaults: zohooauth.db in the working folder, table oauthtoken, WAL journal', async () => {
    const folder = tempFolder();
    const previous = process.cwd();
    process.chdir(folder);
    try {
      const store = new SQLiteTokenStore();
      await store.saveToken(ann());
      await store.close();
    } finally {
      process.chdir(previous);
    }
    const database = new Database(join(folder, 'zohooauth.db'), { readonly: true });
    expect(database.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(database.prepare('SELECT user_name FROM oauthtoken').pluck().all()).toEqual(['ann@example.com:1']);
    database.close();
  });

  test("':memory:' works, and each such store is its own database", async () => {
    const first = new SQLiteTokenStore({ filename: ':memory:' });
    const second = new SQLiteTokenStore({ filename: ':memory:' });
    await first.saveToken(ann());
    expect(await first.getTokens()).toHaveLength(1);
    expect(await second.getTokens()).toHaveLength(0);
    await first.close();
    await second.close();
  });

  test('journalMode replaces WAL', async () => {
    const filename = join(tempFolder(), 'tokens.db');
    const store = new SQLiteTokenStore({ filename, journalMode: 'DELETE' });
    await store.saveToken(ann());
    expect(existsSync(`${filename}-wal`)).toBe(false);
    await store.close();
    const database = new Database(filename);
    expect(database.pragma('journal_mode', { simple: true })).toBe('delete'); // WAL would have been kept in the file
    database.close();
  });

  test('a custom table, even a keyword, lives beside other tables in one file', async () => {
    const filename = join(tempFolder(), 'app.db');
    const orders = new SQLiteTokenStore({ filename, table: 'order' });
    const tokens = new SQLiteTokenStore({ filename });
    await orders.saveToken(ann());
    expect(await tokens.getTokens()).toHaveLength(0);
    await tokens.deleteTokens();
    expect(await orders.getTokens()).toHaveLength(1);
    await orders.close();
    await tokens.close();
  });

  test.each([
    ['a statement', 'oauthtoken; DROP TABLE oauthtoken'],
    ['a quote', 'oauth"token'],
    ['a space', 'oauth token'],
    ['a leading digit', '1tokens'],
    ['a non-ASCII letter', 'tökens'],
    ['an empty name', ''],
    ['64 characters', 't'.repeat(64)],
    ["SQLite's reserved prefix", 'sqlite_master'],
    ['a number', 42],
  ])('a table name with %s is INVALID_ARGUMENT and the database is untouched', async (_, table) => {
    const filename = join(tempFolder(), 'tokens.db');
    const database = new Database(filename);
    database.exec('CREATE TABLE oauthtoken (id TEXT PRIMARY KEY, user_name TEXT)');
    await storeError(() => new SQLiteTokenStore({ database, table: table as string }), 'INVALID_ARGUMENT');
    await storeError(() => new SQLiteTokenStore({ filename, table: table as string }), 'INVALID_ARGUMENT');
    expect(database.prepare('SELECT name FROM sqlite_master').pluck().all()).toEqual(['oauthtoken', 'sqlite_autoindex_oauthtoken_1']);
    database.close();
  });

  test('63 characters is the longest table name accepted', async () => {
    const store = new SQLiteTokenStore({ filename: ':memory:', table: `_${'t'.repeat(62)}` });
    await store.saveToken(ann());
    expect(await store.getTokens()).toHaveLength(1);
    await store.close();
  });

  test.each([
    ['both filename and database', { filename: 'x.db', database: new Database(':memory:') }],
    ['a database that is not one', { database: {} }],
    ['an empty filename', { filename: '' }],
    ['a zero operation timeout', { operationTimeoutMs: 0 }],
    ['a negative operation timeout', { operationTimeoutMs: -1 }],
    ['a fractional operation timeout', { operationTimeoutMs: 1.5 }],
    ['a non-boolean createSchema', { createSchema: 'no' }],
    ['options that are not an object', 'tokens.db'],
    ['an unknown journal mode', { journalMode: 'WAL; DROP TABLE oauthtoken' }],
    ['a non-boolean readonly', { readonly: 'yes' }],
  ])('%s is INVALID_ARGUMENT', async (_, options) => {
    await storeError(() => new SQLiteTokenStore(options as never), 'INVALID_ARGUMENT');
  });
});

describe('your own better-sqlite3 connection', () => {
  test('is used as it is set up, and stays open after close()', async () => {
    const filename = join(tempFolder(), 'app.db');
    const database = new Database(filename);
    const store = new SQLiteTokenStore({ database });
    await store.saveToken(ann());
    await store.close();
    expect(database.open).toBe(true);
    expect(database.pragma('journal_mode', { simple: true })).toBe('delete'); // not switched to WAL unasked
    expect(database.prepare('SELECT COUNT(*) FROM oauthtoken').pluck().get()).toBe(1);
    await storeError(() => store.getTokens(), 'STORE_CLOSED');
    database.close();
  });

  test('gets operationTimeoutMs (as its busy timeout) and journalMode when they are given', () => {
    const database = new Database(join(tempFolder(), 'app.db'));
    new SQLiteTokenStore({ database, operationTimeoutMs: 1234, journalMode: 'WAL' }).close();
    expect(database.pragma('busy_timeout', { simple: true })).toBe(1234);
    expect(database.pragma('journal_mode', { simple: true })).toBe('wal');
    database.close();
  });

  test('closed by its owner: calls reject with BACKEND_UNAVAILABLE', async () => {
    const database = new Database(':memory:');
    const store = new SQLiteTokenStore({ database });
    database.close();
    await storeError(() => store.findTokenById('x'), 'BACKEND_UNAVAILABLE');
  });
});

describe('storage failures are TokenStoreErrors', () => {
  test('a missing folder: BACKEND_UNAVAILABLE at open, nothing created', async () => {
    const folder = join(tempFolder(), 'does', 'not', 'exist');
    const error = await storeError(() => new SQLiteTokenStore({ filename: join(folder, 'tokens.db') }), 'BACKEND_UNAVAILABLE');
    expect(error.operation).toBe('open');
    expect(error.message).toContain('does not exist');
    expect(existsSync(folder)).toBe(false);
  });

  test('a folder where the file should be: BACKEND_UNAVAILABLE at open', async () => {
    const folder = join(tempFolder(), 'tokens.db');
    mkdirSync(folder);
    await storeError(() => new SQLiteTokenStore({ filename: folder }), 'BACKEND_UNAVAILABLE');
  });

  test('a file that is not a database: CORRUPT_DATA at open, file untouched', async () => {
    const filename = join(tempFolder(), 'tokens.db');
    const text = 'id,user_name\n1,ann\n'.repeat(100);
    writeFileSync(filename, text);
    await storeError(() => new SQLiteTokenStore({ filename }), 'CORRUPT_DATA');
    expect(readFileSync(filename, 'utf8')).toBe(text);
  });

  test('a write lock held past operationTimeoutMs: BACKEND_UNAVAILABLE within about that time, and the save can be retried', async () => {
    const filename = join(tempFolder(), 'tokens.db');
    const store = new SQLiteTokenStore({ filename, operationTimeoutMs: 50 });
    const other = new Database(filename);
    other.exec('BEGIN IMMEDIATE');
    const token = ann();
    const started = Date.now();
    await storeError(() => store.saveToken(token), 'BACKEND_UNAVAILABLE');
    expect(Date.now() - started).toBeLessThan(2000);
    expect(token.id).toBeNull();
    expect(await store.getTokens()).toHaveLength(0); // WAL: reads go on while another connection writes
    other.exec('ROLLBACK');
    other.close();
    await store.saveToken(token);
    expect(token.id).not.toBeNull();
    await store.close();
  });

  test('after close(): every call rejects with STORE_CLOSED, and close() again is fine', async () => {
    const filename = join(tempFolder(), 'tokens.db');
    const store = new SQLiteTokenStore({ filename });
    await store.saveToken(ann());
    await store.close();
    await store.close();
    const calls: [string, () => Promise<unknown>][] = [
      ['findToken', () => store.findToken(ann())],
      ['findTokenById', () => store.findTokenById('x')],
      ['saveToken', () => store.saveToken(ann())],
      ['deleteToken', () => store.deleteToken('x')],
      ['getTokens', () => store.getTokens()],
      ['deleteTokens', () => store.deleteTokens()],
    ];
    for (const [operation, call] of calls) expect(await storeError(call, 'STORE_CLOSED')).toMatchObject({ operation });
    // Even a bad argument: the store is closed before anything else is checked.
    await storeError(() => store.findTokenById(''), 'STORE_CLOSED');
    const reopened = new SQLiteTokenStore({ filename });
    expect(await reopened.getTokens()).toHaveLength(1); // the deleteTokens above did nothing
    await reopened.close();
  });
});

describe('readonly: true', () => {
  /** A database holding ann, left in rollback-journal mode, and not open anywhere. */
  async function annDatabase(): Promise<string> {
    const filename = join(tempFolder(), 'tokens.db');
    const store = new SQLiteTokenStore({ filename, journalMode: 'DELETE' });
    await store.saveToken(ann());
    await store.close();
    return filename;
  }

  test('reads without writing anything, and refuses saves', async () => {
    const filename = await annDatabase();
    const store = new SQLiteTokenStore({ filename, readonly: true });
    expect((await store.findToken(new OAuthToken({ userSignature: new UserSignature('ann@example.com:1') })))?.accessToken).toBe(
      'access-ann',
    );
    await storeError(() => store.saveToken(ann({ accessToken: 'new-access' })), 'BACKEND_FAILURE');
    await storeError(() => store.deleteTokens(), 'BACKEND_FAILURE');
    await store.close();
    const database = new Database(filename, { readonly: true });
    expect(database.pragma('journal_mode', { simple: true })).toBe('delete');
    expect(database.prepare('SELECT access_token FROM oauthtoken').pluck().all()).toEqual(['access-ann']);
    database.close();
  });

  test('on a missing file or table: a TokenStoreError, no file created', async () => {
    const folder = tempFolder();
    await storeError(() => new SQLiteTokenStore({ filename: join(folder, 'none.db'), readonly: true }), 'BACKEND_UNAVAILABLE');
    expect(existsSync(join(folder, 'none.db'))).toBe(false);
    const empty = join(folder, 'empty.db');
    new Database(empty).exec('CREATE TABLE other (x)');
    await storeError(() => new SQLiteTokenStore({ filename: empty, readonly: true }), 'BACKEND_FAILURE');
  });
});

/** The error a real statement throws. */
function driverError(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error('the statement did not fail');
}

describe('driver errors map to TokenStoreError codes, a safe copy of the driver error kept as cause', () => {
  const database = new Database(':memory:');
  beforeAll(() => {
    database.exec(
      "CREATE TABLE oauthtoken (id TEXT PRIMARY KEY, user_name TEXT); CREATE UNIQUE INDEX u ON oauthtoken (user_name) WHERE user_name <> ''",
    );
    database.prepare('INSERT INTO oauthtoken VALUES (?, ?)').run('id-1', 'secret-looking-name');
  });
  afterAll(() => database.close());

  test('UNIQUE on user_name: CONFLICT naming the user name, not its value', () => {
    const cause = driverError(() => database.prepare('INSERT INTO oauthtoken VALUES (?, ?)').run('id-2', 'secret-looking-name'));
    const error = toStoreError(cause, 'saveToken');
    expect(error).toMatchObject({ code: 'CONFLICT', operation: 'saveToken', store: 'SQLiteTokenStore' });
    // The cause is a copy keeping SQLite's code and message, never the driver's object itself.
    expect(error.cause).not.toBe(cause);
    expect(error.cause).toMatchObject({ code: 'SQLITE_CONSTRAINT_UNIQUE', message: 'UNIQUE constraint failed: oauthtoken.user_name' });
    expect(error.message).toContain('user name');
    expect(error.message).not.toContain('secret-looking-name');
  });

  test('PRIMARY KEY: CONFLICT on the id', () => {
    const cause = driverError(() => database.prepare('INSERT INTO oauthtoken VALUES (?, ?)').run('id-1', 'other'));
    expect(toStoreError(cause, 'saveToken')).toMatchObject({ code: 'CONFLICT', message: expect.stringContaining('id') });
  });

  test('SQLITE_BUSY from another connection holding the lock: BACKEND_UNAVAILABLE', () => {
    const filename = join(tempFolder(), 'busy.db');
    const holder = new Database(filename);
    const waiter = new Database(filename, { timeout: 0 });
    holder.exec('CREATE TABLE t (x); BEGIN IMMEDIATE');
    const cause = driverError(() => waiter.exec('BEGIN IMMEDIATE'));
    expect(toStoreError(cause, 'saveToken').code).toBe('BACKEND_UNAVAILABLE');
    holder.exec('ROLLBACK');
    holder.close();
    waiter.close();
  });

  test('SQLITE_READONLY: BACKEND_FAILURE', () => {
    const filename = join(tempFolder(), 'ro.db');
    new Database(filename).exec('CREATE TABLE t (x)');
    const reader = new Database(filename, { readonly: true });
    const cause = driverError(() => reader.exec('INSERT INTO t VALUES (1)'));
    expect(toStoreError(cause, 'saveToken')).toMatchObject({ code: 'BACKEND_FAILURE', message: expect.stringContaining('read-only') });
    reader.close();
  });

  test('anything else: BACKEND_FAILURE naming the SQLite code only', () => {
    const cause = driverError(() => database.exec("SELECT * FROM missing_table WHERE x = 'secret-value'"));
    const error = toStoreError(cause, 'getTokens');
    expect(error).toMatchObject({ code: 'BACKEND_FAILURE', message: 'SQLiteTokenStore.getTokens: the database reported SQLITE_ERROR' });
  });
});

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

describe("a table Zoho's SDKs wrote, with '' for every absent value", () => {
  /** Ann has a refresh token and no access token; a second user has neither user name nor grant token. */
  function emptyStringDatabase(): string {
    const filename = join(tempFolder(), 'zohooauth.db');
    const database = new Database(filename);
    database.exec(ZOHO_CREATE_TABLE);
    const insert = database.prepare(ZOHO_INSERT);
    insert.run('1', 'ann@example.com:111', 'client-1', 'secret-1', 'refresh-1', '', '', '1732800000000', '', '');
    insert.run('2', '', 'client-2', 'secret-2', '', 'access-2', '', '', '', '');
    database.close();
    return filename;
  }

  test("findToken with only accessToken = '' (assigned after construction) is null, not another user's token", async () => {
    const store = new SQLiteTokenStore({ filename: emptyStringDatabase() });
    const probe = new OAuthToken({});
    probe.accessToken = '';
    expect(await store.findToken(probe)).toBeNull();
    expect(probe.toFields()).toMatchObject({ id: null, accessToken: null, refreshToken: null });
    // Rule 3 with '' credentials and refresh token: nothing identifies a token either.
    const credentials = new OAuthToken({});
    Object.assign(credentials, { clientId: '', clientSecret: '', refreshToken: '' });
    expect(await store.findToken(credentials)).toBeNull();
    await store.close();
  });

  test("saving a token whose only material is accessToken = '' is INVALID_TOKEN, and nothing is written", async () => {
    const filename = emptyStringDatabase();
    const before = zohoRows(filename);
    const store = new SQLiteTokenStore({ filename });
    const empty = new OAuthToken({ clientId: 'client-9' });
    empty.accessToken = '';
    await storeError(() => store.saveToken(empty), 'INVALID_TOKEN');
    expect(empty.id).toBeNull();
    const renamed = new OAuthToken({ userSignature: new UserSignature('ann@example.com:111') });
    renamed.accessToken = '';
    await storeError(() => store.saveToken(renamed), 'INVALID_TOKEN');
    await store.close();
    expect(zohoRows(filename)).toEqual(before);
  });
});

describe('option names', () => {
  test('busyTimeoutMs was renamed: INVALID_ARGUMENT naming operationTimeoutMs, nothing created', async () => {
    const filename = join(tempFolder(), 'tokens.db');
    const error = await storeError(() => new SQLiteTokenStore({ filename, busyTimeoutMs: 100 } as never), 'INVALID_ARGUMENT');
    expect(error.message).toContain('busyTimeoutMs was renamed to operationTimeoutMs');
    expect(existsSync(filename)).toBe(false);
  });

  test.each(['path', 'url', 'timeout', 'autoMigrate', 'constructor', 'toString', '__proto__'])(
    'an unknown option (%s) is INVALID_ARGUMENT naming it',
    async (name) => {
      // defineProperty, so even `__proto__` becomes an own option key, as JSON.parse would make it.
      const options = Object.defineProperty({ filename: ':memory:' }, name, { value: true, enumerable: true });
      const error = await storeError(() => new SQLiteTokenStore(options as never), 'INVALID_ARGUMENT');
      expect(error.message).toContain(`unknown option ${name};`);
    },
  );
});

describe('createSchema: false', () => {
  test('opens an existing table as it is: no index added, saves and reads work', async () => {
    const filename = join(tempFolder(), 'zohooauth.db');
    const database = new Database(filename);
    database.exec(ZOHO_CREATE_TABLE);
    const schema = () => database.prepare('SELECT name FROM sqlite_master ORDER BY name').pluck().all();
    const before = schema();
    const store = new SQLiteTokenStore({ filename, createSchema: false });
    await store.saveToken(ann());
    expect((await store.findToken(new OAuthToken({ userSignature: new UserSignature('ann@example.com:1') })))?.accessToken).toBe(
      'access-ann',
    );
    await store.close();
    expect(schema()).toEqual(before);
    database.close();
  });

  test('on a missing table: BACKEND_FAILURE at migrate, and no table is created', async () => {
    const filename = join(tempFolder(), 'tokens.db');
    const error = await storeError(() => new SQLiteTokenStore({ filename, createSchema: false }), 'BACKEND_FAILURE');
    expect(error).toMatchObject({ operation: 'migrate', message: expect.stringContaining('createSchema is false') });
    const database = new Database(filename);
    expect(database.prepare("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'").pluck().get()).toBe(0);
    database.close();
  });
});

/**
 * The file holds client secrets and refresh tokens, so only its owner may read it: the store creates it
 * 0600, and SQLite gives its -wal and -shm files the mode of the main file.
 */
describe('file modes', () => {
  /** Runs `action` under umask 022, the usual default that makes new files 0644. */
  async function underUmask022<T>(action: () => Promise<T>): Promise<T> {
    const previous = process.umask(0o022);
    try {
      return await action();
    } finally {
      process.umask(previous);
    }
  }
  const mode = (path: string) => (statSync(path).mode & 0o777).toString(8);

  test('a new database file and its -wal and -shm files are 0600 under umask 022', async () => {
    const filename = join(tempFolder(), 'zohooauth.db');
    await underUmask022(async () => {
      const store = new SQLiteTokenStore({ filename });
      await store.saveToken(ann());
      // The -wal and -shm files exist while a connection is open; SQLite removes them at the last close.
      expect([mode(filename), mode(`${filename}-wal`), mode(`${filename}-shm`)]).toEqual(['600', '600', '600']);
      await store.close();
    });
    expect(mode(filename)).toBe('600');
  });

  test('in rollback-journal mode the -journal file is 0600 too', async () => {
    const filename = join(tempFolder(), 'tokens.db');
    await underUmask022(async () => {
      await new SQLiteTokenStore({ filename, journalMode: 'DELETE' }).close();
      // The -journal file exists only while a write transaction runs.
      const writer = new Database(filename);
      writer.exec("BEGIN IMMEDIATE; INSERT INTO oauthtoken (id) VALUES ('x')");
      expect([mode(filename), mode(`${filename}-journal`)]).toEqual(['600', '600']);
      writer.exec('ROLLBACK');
      writer.close();
    });
  });

  test('the default zohooauth.db in the working folder is 0600 too', async () => {
    const folder = tempFolder();
    const previous = process.cwd();
    process.chdir(folder);
    try {
      await underUmask022(async () => {
        const store = new SQLiteTokenStore();
        await store.saveToken(ann());
        await store.close();
      });
    } finally {
      process.chdir(previous);
    }
    expect(mode(join(folder, 'zohooauth.db'))).toBe('600');
  });

  test('a symlink to a file not yet created: the file it names is created 0600', async () => {
    const folder = tempFolder();
    const target = join(folder, 'private', 'tokens.db');
    mkdirSync(join(folder, 'private'));
    symlinkSync(target, join(folder, 'zohooauth.db'));
    await underUmask022(async () => {
      const store = new SQLiteTokenStore({ filename: join(folder, 'zohooauth.db') });
      await store.saveToken(ann());
      expect([mode(target), mode(`${target}-wal`), mode(`${target}-shm`)]).toEqual(['600', '600', '600']);
      await store.close();
    });
  });

  test('an existing file keeps the mode its owner gave it, and its -wal file follows it', async () => {
    const filename = join(tempFolder(), 'shared.db');
    new Database(filename).close();
    chmodSync(filename, 0o640);
    const store = new SQLiteTokenStore({ filename });
    await store.saveToken(ann());
    expect([mode(filename), mode(`${filename}-wal`)]).toEqual(['640', '640']);
    await store.close();
  });
});

describe('no token value reaches an error or its cause', () => {
  test('a trigger quoting the row it refuses: the secrets of the caller and of the stored row are removed from the cause', async () => {
    const filename = join(tempFolder(), 'tokens.db');
    const store = new SQLiteTokenStore({ filename });
    await store.saveToken(
      ann({
        clientId: 'client-ann',
        clientSecret: 'stored-client-secret',
        refreshToken: 'stored-refresh-token',
        grantToken: 'stored-grant',
      }),
    );
    const database = new Database(filename);
    database.exec(
      "CREATE TRIGGER refuse BEFORE UPDATE ON oauthtoken BEGIN SELECT RAISE(ABORT, concat_ws(' ', 'refused', NEW.client_secret, " +
        'NEW.refresh_token, NEW.access_token, NEW.grant_token, OLD.access_token)); END',
    );
    database.close();
    // The caller sends only a new access token; the row the trigger sees also holds the stored secrets.
    const error = await storeError(() => store.saveToken(ann({ accessToken: 'caller-access-token' })), 'BACKEND_FAILURE');
    expect(error.cause).toMatchObject({ code: 'SQLITE_CONSTRAINT_TRIGGER', message: expect.stringContaining('raised by a trigger') });
    const shown = everything(error);
    for (const secret of ['stored-client-secret', 'stored-refresh-token', 'stored-grant', 'caller-access-token', 'access-ann']) {
      expect(shown).not.toContain(secret);
    }
    expect((await store.findToken(ann({ accessToken: null })))?.accessToken).toBe('access-ann');
    await store.close();
  });
});
