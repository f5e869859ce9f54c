import { join } from 'node:path';
import Database from 'better-sqlite3';
import { toStoreError } from '../src/sqlite-store.js';
import { removeTempFolders, tempFolder } from './helpers.js';

afterEach(removeTempFolders);

/** The error a real statement throws. */
function driverError(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error('the statement did not fail');
}

describe('driver errors map to TokenStoreError codes, the driver error kept only as cause', () => {
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
    expect(error).toMatchObject({ code: 'CONFLICT', operation: 'saveToken', store: 'SQLiteTokenStore', cause });
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
