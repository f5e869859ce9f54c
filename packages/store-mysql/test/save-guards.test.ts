/**
 * What the one-statement saves (MariaDB) must hold whatever the caller's session and table look like: a session
 * without autocommit, a table whose id has no unique key, a stored row that cannot be read back as a token.
 */
import { OAuthToken, TokenStoreError, UserSignature } from '@crm/core';
import { createConnection, createPool, type Pool, type RowDataPacket } from 'mysql2/promise';
import { MySQLTokenStore } from '../src/index';
import { dropTable, mysqlUrl, randomTable } from './conformance-options';

async function codeOf(promise: Promise<unknown>): Promise<string | null> {
  return promise.then(
    () => null,
    (caught: unknown) => (TokenStoreError.is(caught) ? caught.code : `not a TokenStoreError: ${String(caught)}`),
  );
}

const user = (name: string) => new UserSignature(name);

let table: string;
let admin: Awaited<ReturnType<typeof createConnection>>;
beforeEach(async () => {
  table = randomTable('crm_guard');
  admin = await createConnection(await mysqlUrl());
});
afterEach(async () => {
  await admin.end();
  await dropTable(table);
});

/** The table's rows as plain objects, by id (read by another session: only what was committed). */
async function rowsOf(): Promise<Record<string, unknown>[]> {
  const [rows] = await admin.query<RowDataPacket[]>(`SELECT * FROM ${table} ORDER BY id, user_name`);
  return rows.map((row) => ({ ...row }));
}

/**
 * A store on a pool of one connection, so what a test leaves on that connection is what the store's next call
 * meets; the store and the pool are closed after `work`.
 */
async function withOneConnection(work: (store: MySQLTokenStore, pool: Pool) => Promise<void>): Promise<void> {
  const pool = createPool({ uri: await mysqlUrl(), connectionLimit: 1 });
  const store = new MySQLTokenStore({ pool, table, operationTimeoutMs: 3000 });
  try {
    await work(store, pool);
  } finally {
    await store.close();
    await pool.end();
  }
}

describe('a pool whose sessions do not autocommit', () => {
  /** A caller's pool of one connection that runs `SET autocommit = 0` when it connects. */
  async function noAutocommitPool(): Promise<Pool> {
    const pool = createPool({ uri: await mysqlUrl(), connectionLimit: 1 });
    pool.pool.on('connection', (connection) => {
      connection.query('SET autocommit = 0');
    });
    return pool;
  }

  /** Another process's view: a store of its own that must see every save and be able to write the same rows at once. */
  async function otherStore(): Promise<MySQLTokenStore> {
    return new MySQLTokenStore({ url: await mysqlUrl(), table, operationTimeoutMs: 3000 });
  }

  test('saves by user name and by id and deletes are committed, and hold no lock afterwards', async () => {
    const pool = await noAutocommitPool();
    const store = new MySQLTokenStore({ pool, table, operationTimeoutMs: 3000 });
    const other = await otherStore();
    try {
      const ana = new OAuthToken({ userSignature: user('ana'), accessToken: 'a1' });
      await store.saveToken(ana);
      expect((await rowsOf()).map((row) => row.access_token)).toEqual(['a1']);
      await store.saveToken(new OAuthToken({ userSignature: user('ana'), accessToken: 'a2' }));
      expect((await rowsOf()).map((row) => row.access_token)).toEqual(['a2']);
      await store.saveToken(new OAuthToken({ id: ana.id, accessToken: 'a3' }));
      expect((await rowsOf()).map((row) => row.access_token)).toEqual(['a3']);
      // No row lock left behind: another store updates the row within its bound.
      await other.saveToken(new OAuthToken({ userSignature: user('ana'), accessToken: 'a4' }));
      // And this store reads what the other committed (no old snapshot kept open).
      expect((await store.findToken(new OAuthToken({ userSignature: user('ana') })))?.accessToken).toBe('a4');
      await store.saveToken(new OAuthToken({ userSignature: user('bob'), accessToken: 'b1' }));
      await store.deleteToken(ana.id!);
      expect((await rowsOf()).map((row) => row.access_token)).toEqual(['b1']);
      await store.deleteTokens();
      expect(await rowsOf()).toEqual([]);
      await other.saveToken(new OAuthToken({ userSignature: user('bob'), accessToken: 'b2' }));
    } finally {
      await store.close();
      await other.close();
      await pool.end();
    }
  });

  // The store turned autocommit on for its connection; the caller's own code then turns it off again on the
  // same pooled connection (a session reset to a server default of off does the same).
  test.each([
    ['that lost autocommit after the store set it', 'SET autocommit = 0'],
    ['left inside a transaction (START TRANSACTION, autocommit still on)', 'START TRANSACTION'],
  ])('a session %s: saves and deletes are still committed, and no lock is left', async (_state, spoil) => {
    const pool = createPool({ uri: await mysqlUrl(), connectionLimit: 1 });
    const store = new MySQLTokenStore({ pool, table, operationTimeoutMs: 3000 });
    const other = await otherStore();
    const autocommitOff = async () => {
      const connection = await pool.getConnection();
      await connection.query(spoil);
      connection.release();
    };
    try {
      const ana = new OAuthToken({ userSignature: user('ana'), accessToken: 'a1' });
      await store.saveToken(ana);
      await autocommitOff();
      await store.saveToken(new OAuthToken({ userSignature: user('bob'), accessToken: 'b1' }));
      await autocommitOff();
      await store.saveToken(new OAuthToken({ userSignature: user('ana'), accessToken: 'a2' }));
      await autocommitOff();
      await store.saveToken(new OAuthToken({ id: ana.id, accessToken: 'a3' }));
      expect((await rowsOf()).map((row) => row.access_token).sort()).toEqual(['a3', 'b1']);
      expect((await rowsOf()).find((row) => row.id === ana.id)?.access_token).toBe('a3');
      await other.saveToken(new OAuthToken({ id: ana.id, accessToken: 'a4' }));
      await other.saveToken(new OAuthToken({ userSignature: user('bob'), accessToken: 'b2' }));
      await autocommitOff();
      await store.deleteToken(ana.id!);
      expect((await rowsOf()).map((row) => row.access_token)).toEqual(['b2']);
      await autocommitOff();
      await store.deleteTokens();
      expect(await rowsOf()).toEqual([]);
      await other.saveToken(new OAuthToken({ userSignature: user('bob'), accessToken: 'b3' }));
      expect((await rowsOf()).map((row) => row.access_token)).toEqual(['b3']);
    } finally {
      await store.close();
      await other.close();
      await pool.end();
    }
  });

  test('a delete inside a transaction left open rolls that transaction back (as a save does) and commits only itself', async () => {
    await withOneConnection(async (store, pool) => {
      const ana = new OAuthToken({ userSignature: user('ana'), accessToken: 'a1' });
      await store.saveToken(ana);
      await store.saveToken(new OAuthToken({ userSignature: user('bob'), accessToken: 'b1' }));
      // Someone's half-done work on the shared connection: a row written in a transaction never committed.
      const connection = await pool.getConnection();
      await connection.query('START TRANSACTION');
      await connection.query(`INSERT INTO ${table} (id, user_name, access_token) VALUES ('halfdone', 'carol', 'c1')`);
      connection.release();
      await store.deleteToken(ana.id!);
      expect((await rowsOf()).map((row) => row.access_token)).toEqual(['b1']);
    });
  });

  test('a save that takes the locked path on a session left inside a transaction is still saved', async () => {
    await withOneConnection(async (store, pool) => {
      await store.saveToken(new OAuthToken({ userSignature: user('ana'), accessToken: 'a1' }));
      const connection = await pool.getConnection();
      await connection.query('START TRANSACTION');
      await connection.query(`SELECT COUNT(*) FROM ${table}`);
      connection.release();
      // No user name and no id: matched by its access token, the locked path (SET TRANSACTION ISOLATION LEVEL first).
      const byAccessToken = new OAuthToken({ accessToken: 'a1', refreshToken: 'r1' });
      await store.saveToken(byAccessToken);
      expect(await rowsOf()).toMatchObject([{ user_name: 'ana', access_token: 'a1', refresh_token: 'r1' }]);
    });
  });

  test('a save the server sees past its deadline on a session that lost autocommit is BACKEND_UNAVAILABLE, never the general save', async () => {
    await withOneConnection(async (store, pool) => {
      const ana = new OAuthToken({ userSignature: user('ana'), accessToken: 'a1' });
      await store.saveToken(ana);
      // As if the server's clock had stepped 10 s forward since the store measured it: every deadline the store
      // sends now lies in the server's past, so the server sees each save as late.
      const clock = (store as unknown as { clock: { known: number; knownAt: number } }).clock;
      clock.known -= 10_000;
      clock.knownAt = performance.timeOrigin + performance.now();
      for (const late of [
        new OAuthToken({ id: ana.id, accessToken: 'late-id' }),
        new OAuthToken({ userSignature: user('ana'), accessToken: 'late-name' }),
        new OAuthToken({ userSignature: user('bob'), accessToken: 'late-new' }),
      ]) {
        const connection = await pool.getConnection();
        await connection.query('SET autocommit = 0');
        connection.release();
        expect(await codeOf(store.saveToken(late))).toBe('BACKEND_UNAVAILABLE');
      }
      expect((await rowsOf()).map((row) => row.access_token)).toEqual(['a1']);
    });
  });

  test('with a BEFORE INSERT trigger that fills in a missing id, created after the store read the table, a new user is still committed', async () => {
    await withOneConnection(async (store, pool) => {
      await store.migrate();
      await store.getTokens(); // the table's shape and triggers are read now: none yet
      await admin.query(`CREATE TRIGGER ${table}_id BEFORE INSERT ON ${table} FOR EACH ROW SET NEW.id = IFNULL(NEW.id, LEFT(UUID(), 10))`);
      const connection = await pool.getConnection();
      await connection.query('SET autocommit = 0');
      connection.release();
      const bob = new OAuthToken({ userSignature: user('bob'), accessToken: 'b1' });
      await store.saveToken(bob);
      expect(await rowsOf()).toMatchObject([{ id: bob.id, user_name: 'bob', access_token: 'b1' }]);
    });
  });
});

describe('a table whose id has no unique key of its own (createSchema off)', () => {
  test.each([
    ['a plain index on id', 'KEY k_id (id)'],
    ['a unique index over id and user name', 'UNIQUE KEY k_id (id, user_name)'],
  ])('%s: a save by id updates the one row with that id, never adds another', async (_label, key) => {
    await admin.query(
      `CREATE TABLE ${table} (id varchar(255) NOT NULL, user_name varchar(255) NULL, client_id varchar(255), client_secret mediumtext, ` +
        `refresh_token mediumtext, access_token mediumtext, grant_token mediumtext, expiry_time varchar(20), redirect_url text, ` +
        `api_domain varchar(255), ${key}, UNIQUE KEY u (user_name)) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin`,
    );
    const store = new MySQLTokenStore({ url: await mysqlUrl(), table, createSchema: false });
    try {
      const ana = new OAuthToken({ userSignature: user('ana'), accessToken: 'a1', refreshToken: 'r1' });
      await store.saveToken(ana);
      await store.saveToken(new OAuthToken({ id: ana.id, accessToken: 'a2' }));
      expect(await rowsOf()).toEqual([expect.objectContaining({ id: ana.id, user_name: 'ana', access_token: 'a2', refresh_token: 'r1' })]);
      await store.saveToken(new OAuthToken({ id: ana.id, userSignature: user('ana2'), accessToken: 'a3' }));
      expect(await rowsOf()).toEqual([expect.objectContaining({ id: ana.id, user_name: 'ana2', access_token: 'a3', refresh_token: 'r1' })]);
      expect((await store.findTokenById(ana.id!))?.accessToken).toBe('a3');
    } finally {
      await store.close();
    }
  });
});

describe('a stored row that cannot be read as a token', () => {
  /** Each kind of damage: the column, the SQL value written into it, and whether a save may supply that field. */
  const damages: [string, string, string][] = [
    ['expiry_time not a number', 'expiry_time', "'not-a-number'"],
    ['expiry_time beyond a Date', 'expiry_time', "'9000000000000000'"],
    ['expiry_time of 17 digits', 'expiry_time', "'12345678901234567'"],
    ['expiry_time of blanks', 'expiry_time', "'   '"],
    ['a NUL in the access token', 'access_token', "CONCAT('a', CHAR(0 USING utf8mb4))"],
    ['a NUL in the client secret', 'client_secret', "CONCAT(CHAR(0 USING utf8mb4), 's')"],
    ['a NUL in the user name', 'user_name', "CONCAT('ana', CHAR(0 USING utf8mb4))"],
  ];
  /** The field a save supplies for that column (so the save would overwrite the damage), as OAuthToken fields. */
  const supplying: Record<string, Record<string, unknown>> = {
    expiry_time: { expiryTime: 123 },
    access_token: { accessToken: 'new-access' },
    client_secret: { clientSecret: 'new-secret' },
    user_name: {},
  };

  async function damagedStore(returning: boolean) {
    const store = new MySQLTokenStore({ url: await mysqlUrl(), table });
    const ana = new OAuthToken({ userSignature: user('ana'), accessToken: 'a1', clientSecret: 's1', expiryTime: 1 });
    await store.saveToken(ana);
    // MySQL's path (no RETURNING) on this server: the store reads the server's version with the table's shape.
    if (!returning) (store as unknown as { knownShape: { returning: boolean } }).knownShape.returning = false;
    return { store, ana };
  }

  describe.each([
    ['one statement (MariaDB)', true],
    ["MySQL's upsert", false],
  ])('%s', (_path, returning) => {
    test.each(damages)('%s: every save of that token is CORRUPT_DATA and the row stays as it was', async (_label, column, value) => {
      const { store, ana } = await damagedStore(returning);
      try {
        await admin.query(`UPDATE ${table} SET ${column} = ${value} WHERE id = ?`, [ana.id]);
        const before = await rowsOf();
        const name = column === 'user_name' ? null : user('ana');
        const saves: OAuthToken[] = [
          new OAuthToken({ id: ana.id, accessToken: 'by-id' }),
          new OAuthToken({ id: ana.id, accessToken: 'by-id-supplied', ...supplying[column] }),
        ];
        if (name !== null) {
          saves.push(
            new OAuthToken({ userSignature: name, accessToken: 'by-name', refreshToken: 'r2' }),
            new OAuthToken({ userSignature: name, ...supplying[column], refreshToken: 'r3' }),
            new OAuthToken({ id: ana.id, userSignature: name, ...supplying[column], refreshToken: 'r4' }),
          );
        }
        for (const save of saves) {
          expect(await codeOf(store.saveToken(save))).toBe('CORRUPT_DATA');
          expect(await rowsOf()).toEqual(before);
        }
        // A token of another user is saved as usual.
        await store.saveToken(new OAuthToken({ userSignature: user('bob'), accessToken: 'b1' }));
        expect(await rowsOf()).toHaveLength(2);
      } finally {
        await store.close();
      }
    });

    test('an empty stored id: a save by user name is CORRUPT_DATA and the row stays as it was', async () => {
      const { store, ana } = await damagedStore(returning);
      try {
        await admin.query(`UPDATE ${table} SET id = '' WHERE id = ?`, [ana.id]);
        const before = await rowsOf();
        for (const save of [
          new OAuthToken({ userSignature: user('ana'), accessToken: 'by-name' }),
          new OAuthToken({ userSignature: user('ana'), accessToken: 'by-name', expiryTime: 5, clientSecret: 's' }),
        ]) {
          expect(await codeOf(store.saveToken(save))).toBe('CORRUPT_DATA');
          expect(await rowsOf()).toEqual(before);
        }
      } finally {
        await store.close();
      }
    });

    // The guard is stricter than the row check only where the general save still succeeds.
    test('an expiry_time with blanks around it reads, and a save of that token succeeds', async () => {
      const { store, ana } = await damagedStore(returning);
      try {
        await admin.query(`UPDATE ${table} SET expiry_time = ' 42 ' WHERE id = ?`, [ana.id]);
        expect((await store.findTokenById(ana.id!))?.expiryTime).toBe(42);
        await store.saveToken(new OAuthToken({ userSignature: user('ana'), accessToken: 'a2' }));
        await store.saveToken(new OAuthToken({ id: ana.id, accessToken: 'a3' }));
        expect(await store.findTokenById(ana.id!)).toMatchObject({ accessToken: 'a3', expiryTime: 42 });
      } finally {
        await store.close();
      }
    });
  });
});

describe('a BEFORE UPDATE trigger that puts back a NULL id, created after the store read the table', () => {
  test.each([
    ['one statement (MariaDB)', true],
    ["MySQL's upsert, once the triggers are read again (at most a minute later)", false],
  ])('%s: a save over a row that cannot be read is CORRUPT_DATA, and the row stays as it was', async (_path, returning) => {
    const store = new MySQLTokenStore({ url: await mysqlUrl(), table });
    try {
      await store.saveToken(new OAuthToken({ userSignature: user('ana'), accessToken: 'first' }));
      const internals = store as unknown as { knownShape: { returning: boolean }; triggersCheckedAt: number };
      if (!returning) internals.knownShape.returning = false;
      await admin.query(`CREATE TRIGGER ${table}_keep BEFORE UPDATE ON ${table} FOR EACH ROW SET NEW.id = IFNULL(NEW.id, OLD.id)`);
      if (!returning) internals.triggersCheckedAt = performance.now() - 61_000; // as if a minute had passed
      await admin.query(`UPDATE ${table} SET expiry_time = 'soon'`);
      const before = await rowsOf();
      expect(await codeOf(store.saveToken(new OAuthToken({ userSignature: user('ana'), accessToken: 'second' })))).toBe('CORRUPT_DATA');
      expect(await rowsOf()).toEqual(before);
    } finally {
      await store.close();
    }
  });
});

describe('a table with an AUTO_INCREMENT column of its own', () => {
  test("MySQL's upsert is not used (its insert id would be taken for an update): a new user and a known one are saved", async () => {
    const setup = new MySQLTokenStore({ url: await mysqlUrl(), table });
    await setup.migrate();
    await setup.close();
    await admin.query(`ALTER TABLE ${table} ADD COLUMN seq BIGINT NOT NULL AUTO_INCREMENT UNIQUE`);
    const store = new MySQLTokenStore({ url: await mysqlUrl(), table });
    try {
      await store.getTokens();
      (store as unknown as { knownShape: { returning: boolean } }).knownShape.returning = false; // MySQL's path on this server
      const ana = new OAuthToken({ userSignature: user('ana'), accessToken: 'a1', refreshToken: 'r1' });
      await store.saveToken(ana);
      const refreshed = new OAuthToken({ userSignature: user('ana'), accessToken: 'a2' });
      await store.saveToken(refreshed);
      expect(refreshed.toFields()).toMatchObject({ id: ana.id, accessToken: 'a2', refreshToken: 'r1' });
      expect(await rowsOf()).toMatchObject([{ id: ana.id, user_name: 'ana', access_token: 'a2', refresh_token: 'r1' }]);
    } finally {
      await store.close();
    }
  });
});
