import { randomBytes } from 'node:crypto';
import { OAuthToken, TokenStoreError, UserSignature } from '@crm/core';
import { createPool as createCallbackPool } from 'mysql2';
import { createConnection, createPool, type RowDataPacket } from 'mysql2/promise';
import { MySQLTokenStore, type MySQLTokenStoreOptions } from '../src/index';
import { dropTable, mysqlUrl, randomTable } from './conformance-options';

function invalidArgument(options: unknown): TokenStoreError {
  try {
    new MySQLTokenStore(options as MySQLTokenStoreOptions);
  } catch (error) {
    expect(TokenStoreError.is(error) && error.code).toBe('INVALID_ARGUMENT');
    return error as TokenStoreError;
  }
  throw new Error(`accepted ${JSON.stringify(options)}`);
}

describe('table names', () => {
  test.each([
    'oauth`token',
    "oauth'token",
    'oauth"token',
    'oauth token',
    'oauthtoken; DROP TABLE users',
    'oauthtoken--',
    'a.b.c',
    '.oauthtoken',
    'db.',
    '',
    'x'.repeat(65),
    'tablé',
  ])('%j is refused with INVALID_ARGUMENT before any connection', (table) => {
    const error = invalidArgument({ url: 'mysql://root@127.0.0.1:1/none', table });
    expect(error.message).not.toContain(table || '\u0000');
  });

  test('a reserved word, `$` and a database-qualified name work because every name is quoted', async () => {
    const database = `crm_ident_${randomBytes(4).toString('hex')}`;
    const admin = await createConnection(await mysqlUrl());
    await admin.query(`CREATE DATABASE ${database}`);
    try {
      for (const table of [`${database}.select`, `${database}.order$by`]) {
        const store = new MySQLTokenStore({ url: await mysqlUrl(), table });
        await store.saveToken(new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'a' }));
        expect((await store.findToken(new OAuthToken({ userSignature: new UserSignature('ana') })))?.accessToken).toBe('a');
        await store.deleteTokens();
        await store.close();
      }
      const [tables] = await admin.query<RowDataPacket[]>(
        'SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY 1',
        [database],
      );
      expect(tables.map((row) => row.TABLE_NAME)).toEqual(['order$by', 'select']);
    } finally {
      await admin.query(`DROP DATABASE ${database}`);
      await admin.end();
    }
  });
});

describe('options', () => {
  test('bad options are INVALID_ARGUMENT', () => {
    invalidArgument({ operationTimeoutMs: 0 });
    invalidArgument({ operationTimeoutMs: Number.NaN });
    invalidArgument({ maxSaveAttempts: 0 });
    invalidArgument({ pool: {} });
    invalidArgument({ url: 'not a url' });
    invalidArgument(null);
  });

  test.each(['promise', 'callback'])('your own %s pool is used and left open by close()', async (kind) => {
    const url = await mysqlUrl();
    const table = randomTable('crm_pool');
    const promisePool = createPool(url);
    const callbackPool = createCallbackPool(url);
    try {
      const store = new MySQLTokenStore({ pool: kind === 'promise' ? promisePool : callbackPool, table });
      await store.saveToken(new OAuthToken({ accessToken: 'a' }));
      expect(await store.getTokens()).toHaveLength(1);
      await store.close();
      const [rows] = await (kind === 'promise' ? promisePool : callbackPool.promise()).query<RowDataPacket[]>(
        `SELECT COUNT(*) AS n FROM ${table}`,
      );
      expect(Number(rows[0]!.n)).toBe(1);
    } finally {
      await promisePool.end();
      await callbackPool.promise().end();
      await dropTable(table);
    }
  });

  test('a wrong password is BACKEND_FAILURE; the message holds neither the password nor the driver text', async () => {
    const url = new URL(await mysqlUrl());
    url.username = 'crm_nobody';
    url.password = 'hunter2-secret';
    const store = new MySQLTokenStore({ url: url.toString() });
    const error = await store.getTokens().catch((caught: unknown) => caught);
    expect(TokenStoreError.is(error) && error.code).toBe('BACKEND_FAILURE');
    expect((error as Error).message).not.toContain('hunter2');
    expect((error as Error).message).not.toContain('crm_nobody');
    expect((error as Error).cause).toBeDefined();
    await store.close();
  });

  test('a closed store refuses work with a TokenStoreError; close() twice is fine', async () => {
    const store = new MySQLTokenStore({ url: await mysqlUrl(), table: randomTable('crm_closed') });
    await store.close();
    await store.close();
    const error = await store.getTokens().catch((caught: unknown) => caught);
    expect(TokenStoreError.is(error)).toBe(true);
  });

  test('deleteTokens empties only its own table', async () => {
    const url = await mysqlUrl();
    const [mine, theirs] = [randomTable('crm_mine'), randomTable('crm_theirs')];
    const a = new MySQLTokenStore({ url: url, table: mine });
    const b = new MySQLTokenStore({ url: url, table: theirs });
    try {
      await a.saveToken(new OAuthToken({ accessToken: 'a' }));
      await b.saveToken(new OAuthToken({ accessToken: 'b' }));
      await a.deleteTokens();
      expect(await a.getTokens()).toHaveLength(0);
      expect(await b.getTokens()).toHaveLength(1);
    } finally {
      await a.close();
      await b.close();
      await dropTable(mine);
      await dropTable(theirs);
    }
  });
});
