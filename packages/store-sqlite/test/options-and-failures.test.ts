import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OAuthToken, UserSignature } from '@crm/core';
import Database from 'better-sqlite3';
import { SQLiteTokenStore } from '../src/index.js';
import { removeTempFolders, storeError, tempFolder } from './helpers.js';
import { startWorker, workerScript } from './processes.js';

afterEach(removeTempFolders);

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
    ['a negative busy timeout', { busyTimeoutMs: -1 }],
    ['a fractional busy timeout', { busyTimeoutMs: 1.5 }],
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
    await storeError(() => store.getTokens(), 'BACKEND_UNAVAILABLE');
    database.close();
  });

  test('gets busyTimeoutMs and journalMode when they are given', () => {
    const database = new Database(join(tempFolder(), 'app.db'));
    new SQLiteTokenStore({ database, busyTimeoutMs: 1234, journalMode: 'WAL' }).close();
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

  test('a write lock held past busyTimeoutMs: BACKEND_UNAVAILABLE, and the save can be retried', async () => {
    const filename = join(tempFolder(), 'tokens.db');
    const store = new SQLiteTokenStore({ filename, busyTimeoutMs: 50 });
    const other = new Database(filename);
    other.exec('BEGIN IMMEDIATE');
    const token = ann();
    await storeError(() => store.saveToken(token), 'BACKEND_UNAVAILABLE');
    expect(token.id).toBeNull();
    expect(await store.getTokens()).toHaveLength(0); // WAL: reads go on while another connection writes
    other.exec('ROLLBACK');
    other.close();
    await store.saveToken(token);
    expect(token.id).not.toBeNull();
    await store.close();
  });

  test('after close(): BACKEND_UNAVAILABLE for every call, and close() again is fine', async () => {
    const store = new SQLiteTokenStore({ filename: ':memory:' });
    await store.close();
    await store.close();
    await storeError(() => store.saveToken(ann()), 'BACKEND_UNAVAILABLE');
    await storeError(() => store.findToken(ann()), 'BACKEND_UNAVAILABLE');
    await storeError(() => store.deleteTokens(), 'BACKEND_UNAVAILABLE');
  });
});

/**
 * Read-only files. Tests run as root, and root writes through a 0444 mode, so the file is opened by a
 * child process running as `nobody` (uid 65534): the kernel then refuses writes as it would for any app
 * user. Not as root, the child runs as the current user, for whom the mode works anyway.
 */
describe('a read-only file', () => {
  const asUnprivileged = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};

  /** A database in a folder anyone may write, holding ann, made read-only with chmod 0444. */
  async function readOnlyDatabase(journalMode: 'WAL' | 'DELETE'): Promise<string> {
    const folder = tempFolder();
    chmodSync(folder, 0o777);
    const filename = join(folder, 'tokens.db');
    const store = new SQLiteTokenStore({ filename, journalMode });
    await store.saveToken(ann());
    await store.close();
    chmodSync(filename, 0o444);
    return filename;
  }

  const probe = (filename: string) => startWorker(workerScript('probe-worker.mjs'), [filename, 'ann@example.com:1'], asUnprivileged).result;

  test('set up by this store (WAL): reads work, a save is BACKEND_FAILURE and changes nothing', async () => {
    const filename = await readOnlyDatabase('WAL');
    expect(await probe(filename)).toEqual({ open: 'ok', find: 'access-ann', save: 'BACKEND_FAILURE:saveToken', count: 1, close: 'ok' });
    const store = new SQLiteTokenStore({ filename, readonly: true });
    expect((await store.getTokens()).map((token) => token.accessToken)).toEqual(['access-ann']);
    await store.close();
  });

  test('not yet in WAL mode: opening is BACKEND_FAILURE, since the journal mode cannot be set', async () => {
    const filename = await readOnlyDatabase('DELETE');
    expect(await probe(filename)).toEqual({ open: 'BACKEND_FAILURE:open' });
  });

  test('readonly: true reads without writing anything, and refuses saves', async () => {
    const filename = await readOnlyDatabase('DELETE');
    chmodSync(filename, 0o644);
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

  test('readonly: true on a missing file or table: a TokenStoreError, no file created', async () => {
    const folder = tempFolder();
    await storeError(() => new SQLiteTokenStore({ filename: join(folder, 'none.db'), readonly: true }), 'BACKEND_UNAVAILABLE');
    expect(existsSync(join(folder, 'none.db'))).toBe(false);
    const empty = join(folder, 'empty.db');
    new Database(empty).exec('CREATE TABLE other (x)');
    await storeError(() => new SQLiteTokenStore({ filename: empty, readonly: true }), 'BACKEND_FAILURE');
  });
});
