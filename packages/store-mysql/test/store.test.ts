import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { inspect, promisify } from 'node:util';
import { OAuthToken, TokenStoreError, UserSignature } from '@crm/core';
import { createPool as createCallbackPool } from 'mysql2';
import { createConnection, createPool, type RowDataPacket } from 'mysql2/promise';
import { MySQLTokenStore, type MySQLTokenStoreOptions } from '../src/index';
import { parseTableName, statements } from '../src/sql';
import { addFailingTriggers, dropTable, mysqlUrl, randomTable, zohoCreateTable } from './conformance-options';

async function expectCode(promise: Promise<unknown>, code: string): Promise<TokenStoreError> {
  const error = await promise.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(TokenStoreError.is(error) && error.code).toBe(code);
  return error as TokenStoreError;
}

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
    invalidArgument({ operationTimeoutMs: 1.5 }); // a whole number now, like every store
    invalidArgument({ maxSaveAttempts: 0 });
    invalidArgument({ createSchema: 'yes' });
    invalidArgument({ pool: {} });
    invalidArgument({ url: 'not a url' });
    invalidArgument({ url: 'postgres://root@localhost/db' });
    invalidArgument(null);
  });

  test('the message of a bad url never repeats it (it may hold a password)', () => {
    expect(invalidArgument({ url: 'mysql://root:hunter2@[bad' }).message).not.toContain('hunter2');
    // The URL parser takes a bare %; decoding it must still end as INVALID_ARGUMENT, not a URIError.
    expect(invalidArgument({ url: 'mysql://root:50%off-hunter2@127.0.0.1:3306/test' }).message).not.toContain('hunter2');
    invalidArgument({ url: 'mysql://root@127.0.0.1:3306/te%zzst' });
  });

  test.each([
    ['uri', 'url'],
    ['createTable', 'createSchema'],
    ['connectionLimit', 'url'],
  ])('the old option %s is refused, naming %s', (old, renamed) => {
    const error = invalidArgument({ [old]: old === 'createTable' ? false : old === 'uri' ? 'mysql://root@127.0.0.1/test' : 5 });
    expect(error.message).toContain(old);
    expect(error.message).toContain(renamed);
  });

  test('unknown options, and url with pool, are refused', async () => {
    expect(invalidArgument({ tabel: 'x' }).message).toContain('tabel');
    const pool = createPool({ uri: await mysqlUrl() });
    invalidArgument({ url: await mysqlUrl(), pool });
    await pool.end();
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

  // Before: BACKEND_FAILURE ('the store is closed').
  test('after close() every call rejects with STORE_CLOSED; close() twice is fine', async () => {
    const table = randomTable('crm_closed');
    const store = new MySQLTokenStore({ url: await mysqlUrl(), table });
    try {
      await store.saveToken(new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'a' }));
      await Promise.all([store.close(), store.close()]);
      await store.close();
      const token = new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'b' });
      for (const call of [
        () => store.saveToken(token),
        () => store.findToken(token),
        () => store.findTokenById('x'),
        () => store.getTokens(),
        () => store.deleteToken('x'),
        () => store.deleteTokens(),
        () => store.migrate(),
      ]) {
        await expectCode(call(), 'STORE_CLOSED');
      }
    } finally {
      await dropTable(table);
    }
  });

  test('calls still waiting for a connection when close() ends the pool reject with STORE_CLOSED, never a server fault', async () => {
    const table = randomTable('crm_closing');
    const store = new MySQLTokenStore({ url: `${await mysqlUrl()}?connectionLimit=1`, table });
    try {
      await store.saveToken(new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'a' }));
      const calls = Array.from({ length: 20 }, (_, index) =>
        index % 2 === 0
          ? store.saveToken(new OAuthToken({ userSignature: new UserSignature(`u${index}`), accessToken: `t${index}` }))
          : store.findToken(new OAuthToken({ userSignature: new UserSignature('ana') })),
      );
      await store.close();
      const outcomes = await Promise.allSettled(calls);
      const codes = outcomes.map((outcome) =>
        outcome.status === 'fulfilled' ? 'ok' : TokenStoreError.is(outcome.reason) ? outcome.reason.code : String(outcome.reason),
      );
      // Waiting for a connection: STORE_CLOSED. A statement already sent when the pool ended its connection may
      // or may not have run: BACKEND_UNAVAILABLE, as for any connection lost mid-statement. Never a server fault.
      expect(codes.filter((code) => !['ok', 'STORE_CLOSED', 'BACKEND_UNAVAILABLE'].includes(code))).toEqual([]);
      expect(codes).toContain('STORE_CLOSED');
    } finally {
      await dropTable(table);
    }
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

describe('server errors never carry a token value', () => {
  // The kit copies the driver's error without mysql2's `sql` and parameters, and removes the token's secrets
  // from its message: a trigger quoting NEW.access_token must not put it in a log.
  test('a trigger that SIGNALs with the access token in its message', async () => {
    const table = randomTable('crm_fault');
    const store = new MySQLTokenStore({ url: await mysqlUrl(), table });
    const secret = `at-${randomBytes(16).toString('hex')}`;
    const clientSecret = `cs-${randomBytes(16).toString('hex')}`;
    try {
      await store.getTokens();
      await addFailingTriggers(table);
      const token = new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: secret, clientSecret });
      const error = await expectCode(store.saveToken(token), 'BACKEND_FAILURE');
      expect(error.message).toContain('ER_SIGNAL_EXCEPTION');
      const shown = inspect(error, { depth: Number.POSITIVE_INFINITY, showHidden: true });
      expect(shown).toContain('raised by a trigger'); // the code is kept, the trigger's own text is not (it may quote stored values)
      for (const value of [secret, clientSecret, secret.slice(0, 16), 'INSERT INTO']) expect(shown).not.toContain(value);
      expect(JSON.stringify(error)).not.toContain(secret);
      expect(await store.getTokens()).toEqual([]);
    } finally {
      await store.close();
      await dropTable(table);
    }
  });
});

describe('how a save runs', () => {
  let table: string;
  let admin: Awaited<ReturnType<typeof createConnection>>;
  beforeEach(async () => {
    table = randomTable('crm_save');
    admin = await createConnection(await mysqlUrl());
  });
  afterEach(async () => {
    await admin.end();
    await dropTable(table);
  });

  /** A pool whose sessions default to READ COMMITTED (set per connection, never on the shared server). */
  async function readCommittedPool() {
    const pool = createPool({ uri: await mysqlUrl(), connectionLimit: 12 });
    pool.pool.on('connection', (connection) => {
      connection.query('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
    });
    return pool;
  }

  // Tokens without a user name are matched by access token: no unique index can keep them single, the named
  // lock must. Before: under READ COMMITTED parallel first saves each inserted a row.
  test('parallel saves of one token without a user name keep one row, under READ COMMITTED', async () => {
    const pool = await readCommittedPool();
    const store = new MySQLTokenStore({ pool, table });
    try {
      await store.getTokens();
      for (let round = 0; round < 3; round++) {
        const tokens = Array.from({ length: 12 }, (_, n) => new OAuthToken({ accessToken: `shared-${round}`, expiryTime: n }));
        await Promise.all(tokens.map((token) => store.saveToken(token)));
        expect(new Set(tokens.map((token) => token.id)).size).toBe(1);
      }
      expect(await store.getTokens()).toHaveLength(3);
    } finally {
      await store.close();
      await pool.end();
    }
  });

  // A unique index that is not exact (case-insensitive, or PAD SPACE) would make the upsert merge 'Ana' into
  // 'ana': on such a table the store takes the locked path, and the index refuses the second name.
  test("a team's case-insensitive unique index on Zoho's table: 'ana' never overwrites 'Ana'", async () => {
    await admin.query(zohoCreateTable(table));
    await admin.query(`ALTER TABLE ${table} ADD UNIQUE KEY team_user (user_name)`);
    const store = new MySQLTokenStore({ url: await mysqlUrl(), table });
    try {
      await store.saveToken(new OAuthToken({ userSignature: new UserSignature('Ana'), accessToken: 'upper' }));
      const error = await expectCode(
        store.saveToken(new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'lower' })),
        'CONFLICT',
      );
      expect(error.message).toContain('user name');
      const [rows] = await admin.query<RowDataPacket[]>(`SELECT user_name, access_token FROM ${table}`);
      expect(rows.map((row) => ({ ...row }))).toEqual([{ user_name: 'Ana', access_token: 'upper' }]);
    } finally {
      await store.close();
    }
  });

  /** The statements one save runs, from the session's own counters (a one-connection pool: always the same session). */
  async function statementsOfSave(store: MySQLTokenStore, pool: ReturnType<typeof createPool>, token: OAuthToken) {
    const counters = async () => {
      const [rows] = await pool.query<RowDataPacket[]>(
        "SHOW SESSION STATUS WHERE Variable_name IN ('Com_insert', 'Com_select', 'Com_update', 'Com_begin', 'Com_commit')",
      );
      return Object.fromEntries(rows.map((row) => [String(row.Variable_name).slice(4), Number(row.Value)]));
    };
    const before = await counters();
    await store.saveToken(token);
    const after = await counters();
    return Object.fromEntries(Object.keys(after).map((name) => [name, after[name]! - before[name]!]));
  }

  /** What `call` sends the server, from the session's own counters: statements, and the kinds that matter. */
  async function serverWorkOf(pool: ReturnType<typeof createPool>, call: () => Promise<unknown>) {
    const names = [
      'Questions',
      'Com_insert',
      'Com_insert_select',
      'Com_select',
      'Com_update',
      'Com_begin',
      'Com_commit',
      'Com_stmt_prepare',
    ];
    const counters = async () => {
      const [rows] = await pool.query<RowDataPacket[]>(
        `SHOW SESSION STATUS WHERE Variable_name IN (${names.map(() => '?').join(', ')})`,
        names,
      );
      return Object.fromEntries(rows.map((row) => [String(row.Variable_name).replace(/^Com_/, '').toLowerCase(), Number(row.Value)]));
    };
    const before = await counters();
    await call();
    const after = await counters();
    return Object.fromEntries(Object.keys(after).map((name) => [name, after[name]! - before[name]!]));
  }

  test('on its own table (MariaDB) a new user, an update by user name and an update by id are each one statement, like the raw driver', async () => {
    const pool = createPool({ uri: await mysqlUrl(), connectionLimit: 1 });
    const store = new MySQLTokenStore({ pool, table });
    try {
      await store.getTokens();
      // The statements are prepared once per connection: warm them up first.
      const first = new OAuthToken({ userSignature: new UserSignature('warm'), accessToken: 'w', refreshToken: 'wr' });
      await store.saveToken(first);
      await store.saveToken(new OAuthToken({ id: first.id, accessToken: 'w2' }));
      await pool.execute(`SELECT id FROM ${table} WHERE id = ?`, ['x']);
      const raw = await serverWorkOf(pool, () => pool.execute(`SELECT id FROM ${table} WHERE id = ?`, ['x']));
      const one = { ...raw, select: 0 };

      const created = new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'a', refreshToken: 'r', clientId: 'c' });
      // INSERT ... SELECT ... FROM DUAL WHERE <before the deadline>: one statement, counted as an insert_select.
      expect(await serverWorkOf(pool, () => store.saveToken(created))).toEqual({ ...one, insert_select: 1 });
      const update = new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'a2', expiryTime: 5 });
      expect(await serverWorkOf(pool, () => store.saveToken(update))).toEqual({ ...one, insert_select: 1 });
      // Written back from the row the statement returned: the stored id and the fields the save left out.
      expect(update.toFields()).toMatchObject({ id: created.id, refreshToken: 'r', clientId: 'c', accessToken: 'a2', expiryTime: 5 });
      const refresh = new OAuthToken({ id: created.id, accessToken: 'a3', expiryTime: 6, apiDomain: 'https://d' });
      expect(await serverWorkOf(pool, () => store.saveToken(refresh))).toEqual({ ...one, insert_select: 1 });
      expect(refresh.toFields()).toMatchObject({
        userSignature: { name: 'ana' },
        refreshToken: 'r',
        clientId: 'c',
        accessToken: 'a3',
        expiryTime: 6,
      });
      expect(one).toMatchObject({ begin: 0, commit: 0, insert: 0, update: 0, stmt_prepare: 0 });
    } finally {
      await store.close();
      await pool.end();
    }
  });

  test('on a table with a BEFORE INSERT or BEFORE UPDATE trigger every save takes the locked path, and the trigger runs', async () => {
    // Such a trigger could put back the NULL id by which the one-statement saves refuse to write.
    const pool = createPool({ uri: await mysqlUrl(), connectionLimit: 1 });
    const store = new MySQLTokenStore({ pool, table });
    try {
      await store.migrate();
      await admin.query(
        `CREATE TRIGGER ${table}_fill BEFORE INSERT ON ${table} FOR EACH ROW SET NEW.client_id = IFNULL(NEW.client_id, 'filled')`,
      );
      await store.getTokens();
      const created = new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'a', refreshToken: 'r' });
      const work = await serverWorkOf(pool, () => store.saveToken(created));
      expect(work).toMatchObject({ begin: 1, commit: 1, insert: 1, insert_select: 0 });
      expect((await store.findTokenById(created.id!))?.clientId).toBe('filled');
      const update = new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'a2' });
      expect(await serverWorkOf(pool, () => store.saveToken(update))).toMatchObject({ begin: 1, commit: 1, insert_select: 0 });
      expect(update.toFields()).toMatchObject({ id: created.id, accessToken: 'a2', refreshToken: 'r' });
      const refresh = new OAuthToken({ id: created.id, accessToken: 'a3' });
      expect(await serverWorkOf(pool, () => store.saveToken(refresh))).toMatchObject({ begin: 1, commit: 1, insert_select: 0 });
      expect((await store.findTokenById(created.id!))?.accessToken).toBe('a3');
    } finally {
      await store.close();
      await pool.end();
    }
  });

  // MySQL has no INSERT ... RETURNING: there the store runs the upsert in a transaction. The store read the
  // server's version with the table's shape; told it has no RETURNING, it takes MySQL's path on this server.
  test('without RETURNING (MySQL), a save by user name is the upsert in a transaction, reading the row back only when it updated', async () => {
    const pool = createPool({ uri: await mysqlUrl(), connectionLimit: 1 });
    const store = new MySQLTokenStore({ pool, table });
    try {
      await store.getTokens();
      (store as unknown as { knownShape: { returning: boolean } }).knownShape.returning = false;
      const created = new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'a', refreshToken: 'r' });
      // INSERT ... SELECT ... FROM DUAL ... ON DUPLICATE KEY UPDATE: counted as an insert_select.
      expect(await serverWorkOf(pool, () => store.saveToken(created))).toMatchObject({ begin: 1, insert_select: 1, select: 0, commit: 1 });
      const update = new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'a2' });
      expect(await serverWorkOf(pool, () => store.saveToken(update))).toMatchObject({ begin: 1, insert_select: 1, select: 1, commit: 1 });
      expect(update.toFields()).toMatchObject({ id: created.id, refreshToken: 'r', accessToken: 'a2' });
      // A save by id without a user name takes the locked path there: GET_LOCK, SELECT ... FOR UPDATE, RELEASE_LOCK.
      const byId = new OAuthToken({ id: created.id, accessToken: 'a3' });
      expect(await serverWorkOf(pool, () => store.saveToken(byId))).toMatchObject({ begin: 1, insert: 0, select: 3, update: 1, commit: 1 });
      expect(byId.toFields()).toMatchObject({ userSignature: { name: 'ana' }, refreshToken: 'r', accessToken: 'a3' });
    } finally {
      await store.close();
      await pool.end();
    }
  });

  /** The table's rows as plain objects, by id. */
  async function rowsOf(): Promise<Record<string, unknown>[]> {
    const [rows] = await admin.query<RowDataPacket[]>(`SELECT * FROM ${table} ORDER BY id`);
    return rows.map((row) => ({ ...row }));
  }

  test('one-statement saves replace present fields, keep absent ones and keep the stored id, by user name and by id', async () => {
    const store = new MySQLTokenStore({ url: await mysqlUrl(), table });
    try {
      const full = {
        userSignature: new UserSignature('ana'),
        clientId: 'c1',
        clientSecret: 's1',
        refreshToken: 'r1',
        accessToken: 'a1',
        grantToken: 'g1',
        expiryTime: 1,
        redirectUrl: 'https://redirect/1',
        apiDomain: 'https://api/1',
      };
      const ana = new OAuthToken(full);
      await store.saveToken(ana);
      const other = new OAuthToken({ ...full, userSignature: new UserSignature('bob'), accessToken: 'b1' });
      await store.saveToken(other);
      const bobRow = (await rowsOf()).find((row) => row.user_name === 'bob');
      // By user name, without an id: two fields replaced, every other kept, the stored id kept.
      const byName = new OAuthToken({ userSignature: new UserSignature('ana'), refreshToken: 'r2', expiryTime: 2 });
      await store.saveToken(byName);
      const expected = { ...full, id: ana.id, refreshToken: 'r2', expiryTime: 2 };
      expect(byName.toFields()).toEqual(new OAuthToken(expected).toFields());
      // By id: the other fields replaced this time.
      const byId = new OAuthToken({ id: ana.id, accessToken: 'a3', clientSecret: 's3', apiDomain: 'https://api/3' });
      await store.saveToken(byId);
      const expectedById = { ...expected, accessToken: 'a3', clientSecret: 's3', apiDomain: 'https://api/3' };
      expect(byId.toFields()).toEqual(new OAuthToken(expectedById).toFields());
      expect((await store.findTokenById(ana.id!))?.toFields()).toEqual(byId.toFields());
      // The other user's row was never touched.
      expect((await rowsOf()).find((row) => row.user_name === 'bob')).toEqual(bobRow);
      expect(await rowsOf()).toHaveLength(2);
    } finally {
      await store.close();
    }
  });

  test('a save by an id no token has falls back to the general save: the access token match is updated, else the token is inserted with that id', async () => {
    const store = new MySQLTokenStore({ url: await mysqlUrl(), table });
    try {
      const stored = new OAuthToken({ accessToken: 'shared-access', refreshToken: 'r1' });
      await store.saveToken(stored);
      // Rule 2: no token has this id, one has this access token (and no client credentials are given).
      const byAccess = new OAuthToken({ id: 'no-such-id', accessToken: 'shared-access', expiryTime: 7 });
      await store.saveToken(byAccess);
      expect(byAccess.toFields()).toMatchObject({ id: stored.id, refreshToken: 'r1', expiryTime: 7 });
      // Nothing matches: inserted as given, with its own id.
      const unknown = new OAuthToken({ id: 'fresh-id-1', accessToken: 'another-access' });
      await store.saveToken(unknown);
      expect(unknown.id).toBe('fresh-id-1');
      const byId = (a: unknown[], b: unknown[]) => (String(a[0]) < String(b[0]) ? -1 : 1);
      expect((await rowsOf()).map((row) => [row.id, row.access_token, row.expiry_time]).sort(byId)).toEqual(
        [
          [stored.id, 'shared-access', '7'],
          ['fresh-id-1', 'another-access', null],
        ].sort(byId),
      );
    } finally {
      await store.close();
    }
  });

  test('renaming by id onto another user is CONFLICT in the one statement, and changes nothing', async () => {
    const store = new MySQLTokenStore({ url: await mysqlUrl(), table });
    try {
      const ana = new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'a' });
      const bob = new OAuthToken({ userSignature: new UserSignature('bob'), accessToken: 'b' });
      await store.saveToken(ana);
      await store.saveToken(bob);
      const before = await rowsOf();
      const rename = new OAuthToken({ id: bob.id, userSignature: new UserSignature('ana'), accessToken: 'b2' });
      await expectCode(store.saveToken(rename), 'CONFLICT');
      expect(rename.accessToken).toBe('b2'); // a failed save writes nothing back
      expect(await rowsOf()).toEqual(before);
      // Renaming onto a free name is allowed, and keeps the id.
      const free = new OAuthToken({ id: bob.id, userSignature: new UserSignature('carol'), accessToken: 'b3' });
      await store.saveToken(free);
      expect((await store.findTokenById(bob.id!))?.userSignature?.name).toBe('carol');
    } finally {
      await store.close();
    }
  });

  test('a generated id that another token already has never renames that token: the statement fails and writes nothing', async () => {
    const store = new MySQLTokenStore({ url: await mysqlUrl(), table });
    try {
      const bob = new OAuthToken({ userSignature: new UserSignature('bob'), accessToken: 'b' });
      await store.saveToken(bob);
      const before = await rowsOf();
      // The statement the store runs for a save without an id, given bob's id as the "generated" one.
      const sql = statements(parseTableName(table)).upsertReturning(true);
      // The deadline (server time, unix seconds) twice: far ahead here.
      const values = [5, bob.id, 'ana', null, null, null, 'a', null, null, null, null, '4102444800', '4102444800'];
      const error = await admin.execute(sql, values).then(
        () => null,
        (caught: unknown) => caught,
      );
      expect((error as { code?: string } | null)?.code).toBe('ER_BAD_NULL_ERROR');
      expect(await rowsOf()).toEqual(before);
      // Given as the caller's own id, the same statement renames bob's token: that is the contract for an id.
      const [renamed] = await admin.execute<RowDataPacket[]>(statements(parseTableName(table)).upsertReturning(false), values);
      expect(renamed[0]).toMatchObject({ id: bob.id, user_name: 'ana', access_token: 'a' });
    } finally {
      await store.close();
    }
  });

  // The server-side deadline, made to pass at once by telling the store that the server's clock is ten minutes
  // behind: each statement then writes nothing, and the save is BACKEND_UNAVAILABLE, not the general save.
  test('a one-statement save the server runs past its deadline writes nothing and is never turned into the general save', async () => {
    const store = new MySQLTokenStore({ url: await mysqlUrl(), table });
    try {
      const ana = new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'before' });
      await store.saveToken(ana);
      const before = await rowsOf();
      const clock = (store as unknown as { clock: { known: number } }).clock;
      clock.known -= 600_000;
      await expectCode(
        store.saveToken(new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'late' })),
        'BACKEND_UNAVAILABLE',
      );
      await expectCode(
        store.saveToken(new OAuthToken({ userSignature: new UserSignature('bob'), accessToken: 'late' })),
        'BACKEND_UNAVAILABLE',
      );
      await expectCode(store.saveToken(new OAuthToken({ id: ana.id, accessToken: 'late' })), 'BACKEND_UNAVAILABLE');
      // Nor is a save by an id no token has: once the server's clock says the deadline has passed, nothing more
      // is written, whatever made the statement write nothing.
      await expectCode(store.saveToken(new OAuthToken({ id: 'unknown-id', accessToken: 'other' })), 'BACKEND_UNAVAILABLE');
      expect(await rowsOf()).toEqual(before);
      clock.known += 600_000;
      // In time, a save by an id no token has is the general save (no row: not the deadline's doing).
      await store.saveToken(new OAuthToken({ id: 'unknown-id', accessToken: 'other' }));
      expect((await rowsOf()).map((row) => row.access_token).sort()).toEqual(['before', 'other']);
      await store.saveToken(new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'after' }));
      await store.saveToken(new OAuthToken({ id: ana.id, accessToken: 'after-by-id', expiryTime: 7 }));
      expect(await store.findTokenById(ana.id!)).toMatchObject({ accessToken: 'after-by-id', expiryTime: 7 });
    } finally {
      await store.close();
    }
  });

  test('the deadline is checked again after a wait for the row lock: past it the statement fails (NULL id) and writes nothing', async () => {
    const store = new MySQLTokenStore({ url: await mysqlUrl(), table });
    const holder = await createConnection(await mysqlUrl());
    try {
      const ana = new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'before' });
      await store.saveToken(ana);
      const before = await rowsOf();
      const [clock] = await admin.query<RowDataPacket[]>("SET STATEMENT time_zone = '+00:00' FOR SELECT UNIX_TIMESTAMP(SYSDATE(6)) AS now");
      const deadline = (Number(clock[0]?.now) + 1).toFixed(6); // one second of server time from now
      await holder.query('START TRANSACTION');
      await holder.execute(`SELECT id FROM ${table} WHERE id = ? FOR UPDATE`, [ana.id]);
      const sql = statements(parseTableName(table));
      // Both reach the server in time, then wait for the lock past the deadline (not past max_statement_time).
      const byName = admin.execute(sql.upsertReturning(false), [
        30,
        ana.id,
        'ana',
        null,
        null,
        null,
        'late',
        null,
        null,
        null,
        null,
        deadline,
        deadline,
      ]);
      const other = await createConnection(await mysqlUrl());
      const byId = other.execute(sql.updateByIdReturning, [
        30,
        null,
        null,
        null,
        null,
        'late-by-id',
        null,
        null,
        null,
        null,
        ana.id,
        deadline,
      ]);
      const outcomes = Promise.all(
        [byName, byId].map((write) =>
          write.then(
            () => 'written',
            (error: { code?: string }) => error.code,
          ),
        ),
      );
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await holder.query('COMMIT');
      expect(await outcomes).toEqual(['ER_BAD_NULL_ERROR', 'ER_BAD_NULL_ERROR']);
      await other.end();
      expect(await rowsOf()).toEqual(before);
    } finally {
      await holder.end();
      await store.close();
    }
  });

  test('a one-statement save stuck behind a row lock past the bound fails, and is not applied when the lock goes', async () => {
    const store = new MySQLTokenStore({ url: await mysqlUrl(), table, operationTimeoutMs: 1000 });
    const holder = await createConnection(await mysqlUrl());
    try {
      const ana = new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'before' });
      await store.saveToken(ana);
      await holder.query('START TRANSACTION');
      await holder.execute(`SELECT id FROM ${table} WHERE id = ? FOR UPDATE`, [ana.id]);
      const started = Date.now();
      await expectCode(
        store.saveToken(new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'after' })),
        'BACKEND_UNAVAILABLE',
      );
      await expectCode(store.saveToken(new OAuthToken({ id: ana.id, accessToken: 'after-by-id' })), 'BACKEND_UNAVAILABLE');
      expect(Date.now() - started).toBeLessThan(2 * 1000 + 1500);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await holder.query('COMMIT');
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect((await rowsOf()).map((row) => row.access_token)).toEqual(['before']);
    } finally {
      await holder.end();
      await store.close();
    }
  });

  test('strict for its one statement: a column that shrank under the store, in a non-strict session, is VALUE_TOO_LONG and unchanged', async () => {
    const pool = createPool({ uri: await mysqlUrl(), connectionLimit: 1 });
    pool.pool.on('connection', (connection) => {
      connection.query("SET SESSION sql_mode = ''");
    });
    const store = new MySQLTokenStore({ pool, table });
    try {
      const eve = new OAuthToken({ userSignature: new UserSignature('eve'), accessToken: 'short' });
      await store.saveToken(eve);
      await admin.query(`ALTER TABLE ${table} MODIFY access_token varchar(10)`);
      const before = await rowsOf();
      const error = await expectCode(
        store.saveToken(new OAuthToken({ userSignature: new UserSignature('eve'), accessToken: 'longer-than-ten' })),
        'VALUE_TOO_LONG',
      );
      expect(error.message).toContain('access_token');
      await expectCode(store.saveToken(new OAuthToken({ id: eve.id, accessToken: 'longer-than-ten' })), 'VALUE_TOO_LONG');
      expect(await rowsOf()).toEqual(before);
    } finally {
      await store.close();
      await pool.end();
    }
  });

  test("on Zoho's table a save takes the table's named lock around its transaction", async () => {
    await admin.query(zohoCreateTable(table));
    const pool = createPool({ uri: await mysqlUrl(), connectionLimit: 1 });
    const store = new MySQLTokenStore({ pool, table });
    try {
      await store.getTokens();
      // GET_LOCK, the SELECT ... FOR UPDATE, RELEASE_LOCK.
      const created = await statementsOfSave(store, pool, new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'a' }));
      expect(created).toEqual({ begin: 1, insert: 1, select: 3, update: 0, commit: 1 });
      const [rows] = await pool.query<RowDataPacket[]>(`SELECT IS_USED_LOCK(CONCAT('crm:', SHA1(CONCAT(DATABASE(), '.', ?)))) AS holder`, [
        table,
      ]);
      expect(rows[0]!.holder).toBeNull(); // released after the commit
    } finally {
      await store.close();
      await pool.end();
    }
  });
});

const execFileAsync = promisify(execFile);

describe('deletes racing saves', () => {
  // A DELETE takes row locks against the saves' locks and can lose a deadlock like a save: it runs again.
  test.each(['READ COMMITTED', 'SERIALIZABLE'])(
    'deleteTokens and deleteToken racing saves from three processes under %s: no error reaches the caller',
    async (level) => {
      const table = randomTable('crm_delrace');
      const url = await mysqlUrl();
      const setup = new MySQLTokenStore({ url, table });
      await setup.getTokens(); // creates the table once
      await setup.close();
      try {
        const failures: string[] = [];
        for (let run = 0; run < 3; run++) {
          const reports = await Promise.all(
            [0, 1, 2].map((worker) =>
              execFileAsync(
                process.execPath,
                ['--import', 'tsx', join(__dirname, 'workers/delete-race-worker.ts'), url, table, level, String(worker)],
                { encoding: 'utf8', timeout: 100000 },
              ),
            ),
          );
          for (const report of reports)
            failures.push(...(JSON.parse(report.stdout.trim().split('\n').pop() ?? '{}').failures ?? ['no report']));
        }
        expect(failures).toEqual([]);
      } finally {
        await dropTable(table);
      }
    },
    300000,
  );
});
