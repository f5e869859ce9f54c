import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { OAuthToken, TokenStoreError, UserSignature } from '@crm/core';
import pg from 'pg';
import { PostgresTokenStore, STORE_NAME } from '../src/index.js';
import { buildSql } from '../src/sql.js';
import {
  addFaultTrigger,
  adminQuery,
  dropTable,
  ensureTestSchema,
  errorCode,
  postgresUrl,
  randomTable,
  TEST_SCHEMA,
} from './conformance-options.js';

let url: string;
const tables: string[] = [];

beforeAll(async () => {
  url = await postgresUrl();
});

afterAll(async () => {
  for (const table of tables) await dropTable(url, TEST_SCHEMA, table);
});

function openStore(options: Partial<ConstructorParameters<typeof PostgresTokenStore>[0]> = {}): PostgresTokenStore {
  const table = randomTable();
  tables.push(table);
  return new PostgresTokenStore({ url, schema: TEST_SCHEMA, table, ...options } as ConstructorParameters<typeof PostgresTokenStore>[0]);
}

const userToken = (name: string, extra: ConstructorParameters<typeof OAuthToken>[0] = {}) =>
  new OAuthToken({
    userSignature: new UserSignature(name),
    clientId: 'client',
    clientSecret: 'secret',
    refreshToken: `r-${name}`,
    ...extra,
  });

describe('identifiers', () => {
  const hostile = ['a"b', 'tokens; DROP TABLE x', 'two words', "it's", 'x--y', '', '1starts_with_digit', 'tab\tle', 'ä'];

  test.each([...hostile, 'a'.repeat(53)])('table %j is rejected with INVALID_ARGUMENT before any SQL runs', (table) => {
    expect(() => new PostgresTokenStore({ url, table })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', operation: 'open' }));
  });

  test.each([...hostile, 'a'.repeat(64)])('schema %j is rejected with INVALID_ARGUMENT', (schema) => {
    expect(() => new PostgresTokenStore({ url, schema })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  test('mixed-case names are quoted, so case is kept', async () => {
    const table = `Mixed_${randomTable()}`;
    tables.push(table);
    const store = new PostgresTokenStore({ url, schema: TEST_SCHEMA, table });
    expect(store.qualifiedTable).toBe(`"${TEST_SCHEMA}"."${table}"`);
    await store.saveToken(userToken('case@x:1'));
    const found = await adminQuery(url, 'SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = $1 AND tablename = $2', [
      TEST_SCHEMA,
      table,
    ]);
    expect(found[0]?.n).toBe(1);
    await store.close();
  });

  test('options are checked', () => {
    const refused = (options: unknown, message: RegExp) =>
      expect(() => new PostgresTokenStore(options as never)).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT', operation: 'open', message: expect.stringMatching(message) }),
      );
    refused({ url, operationTimeoutMs: 0 }, /operationTimeoutMs must be a whole number/);
    refused({ url, operationTimeoutMs: 1.5 }, /operationTimeoutMs/);
    refused({ url, maxSaveAttempts: 0 }, /maxSaveAttempts must be a whole number/);
    refused({ url, createSchema: 'yes' }, /createSchema must be true or false/);
    refused({}, /pass either pool or url/);
    refused(null, /options must be an object/);
    refused({ url, pool: new pg.Pool() }, /pass either pool or url/);
    refused({ pool: {} }, /pool must be a pg.Pool/);
    refused({ pool: new pg.Pool(), poolConfig: { max: 1 } }, /poolConfig applies only with url/);
    refused({ url: 'mysql://root@127.0.0.1/test' }, /url must be a URL starting with postgres:\/\/ or postgresql:\/\//);
    refused({ url, tabel: 'x' }, /unknown option tabel;/);
    refused(JSON.parse(`{ "url": "${url}", "constructor": 1 }`), /unknown option constructor;/);
    refused({ url, toString: 'x' }, /unknown option toString;/);
    // The old names are refused with the new name in the message, never silently ignored.
    refused({ connectionString: url }, /connectionString was renamed to url/);
    refused({ url, autoMigrate: false }, /autoMigrate was renamed to createSchema/);
  });

  test('a bad url never shows up in the error (it may hold a password)', () => {
    const error = (() => {
      try {
        return new PostgresTokenStore({ url: 'postgres//user:hunter2secret@host/db' });
      } catch (caught) {
        return caught;
      }
    })();
    expect(TokenStoreError.is(error) && error.code).toBe('INVALID_ARGUMENT');
    expect(inspect(error, { depth: Infinity, showHidden: true })).not.toContain('hunter2secret');
  });

  test('defaults: public.oauthtoken, 5000 ms, 5 save attempts', async () => {
    const store = new PostgresTokenStore({ url });
    expect([store.qualifiedTable, store.operationTimeoutMs, store.maxSaveAttempts]).toEqual(['"public"."oauthtoken"', 5000, 5]);
    await store.close();
  });
});

describe('schema', () => {
  test('the first operation creates table, unique keys and lookup indexes with Zoho column names', async () => {
    const store = openStore();
    expect(await store.getTokens()).toEqual([]);
    const columns = await adminQuery<{ column_name: string; data_type: string }>(
      url,
      'SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position',
      [TEST_SCHEMA, store.table],
    );
    expect(columns.map((column) => column.column_name)).toEqual([
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
    expect(columns.filter((column) => column.data_type !== 'text').map((column) => column.column_name)).toEqual(['expiry_time']);
    expect(columns.find((column) => column.column_name === 'expiry_time')?.data_type).toBe('bigint');
    const indexes = await adminQuery<{ indexdef: string }>(
      url,
      'SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = $2',
      [TEST_SCHEMA, store.table],
    );
    const definitions = indexes.map((index) => index.indexdef).join('\n');
    expect(definitions).toMatch(/UNIQUE INDEX \S+_pkey .*\(id\)/);
    expect(definitions).toMatch(
      /UNIQUE INDEX \S+_user_uq .*\(user_name\) WHERE \(\(user_name IS NOT NULL\) AND \(user_name <> ''::text\)\)/,
    );
    // Hash, not btree: a btree entry is capped at about 2.7 KB, and tokens can be longer.
    for (const column of ['access_token', 'grant_token', 'refresh_token']) expect(definitions).toMatch(`USING hash (${column})`);
    expect(definitions).not.toMatch(/_ix ON/);
    await store.close();
  });

  test('with createSchema false nothing is created until migrate(); migrate() is idempotent', async () => {
    const store = openStore({ createSchema: false });
    expect(await errorCode(store.getTokens())).toBe('BACKEND_FAILURE');
    await Promise.all([store.migrate(), store.migrate(), store.migrate()]);
    await store.migrate();
    await store.saveToken(userToken('migrated@x:1'));
    expect(await store.getTokens()).toHaveLength(1);
    await store.close();
  });

  test('tokens without a user name never collide on the partial unique index; empty user names stored by others read as absent', async () => {
    const store = openStore();
    await store.saveToken(new OAuthToken({ accessToken: 'a1' }));
    await store.saveToken(new OAuthToken({ accessToken: 'a2' }));
    await adminQuery(
      url,
      `INSERT INTO "${TEST_SCHEMA}"."${store.table}" (id, user_name, access_token) VALUES ('e1', '', 'a3'), ('e2', '', 'a4')`,
    );
    const tokens = await store.getTokens();
    expect(tokens).toHaveLength(4);
    expect(tokens.every((token) => token.userSignature === null)).toBe(true);
    await store.close();
  });
});

describe('stored values', () => {
  test('expiry_time is a bigint of epoch milliseconds; out-of-range stored values are CORRUPT_DATA', async () => {
    const store = openStore();
    const token = userToken('expiry@x:1', { expiryTime: 8.64e15 });
    await store.saveToken(token);
    const stored = await adminQuery<{ expiry_time: string }>(url, `SELECT expiry_time FROM "${TEST_SCHEMA}"."${store.table}"`);
    expect(stored[0]?.expiry_time).toBe('8640000000000000');
    expect((await store.findTokenById(token.id as string))?.expiryTime).toBe(8.64e15);
    await adminQuery(url, `UPDATE "${TEST_SCHEMA}"."${store.table}" SET expiry_time = 9000000000000000000`);
    expect(await errorCode(store.findTokenById(token.id as string))).toBe('CORRUPT_DATA');
    await store.close();
  });

  test('a value too long for a narrower column of a team-owned table is VALUE_TOO_LONG and the message shows no value', async () => {
    const store = openStore({ createSchema: false });
    await ensureTestSchema(url);
    await adminQuery(
      url,
      `CREATE TABLE "${TEST_SCHEMA}"."${store.table}" (id text PRIMARY KEY, user_name text, client_id text, client_secret varchar(20),
        refresh_token text, access_token text, grant_token text, expiry_time bigint, redirect_url text, api_domain text)`,
    );
    await adminQuery(
      url,
      `CREATE UNIQUE INDEX "${store.table}_user_uq" ON "${TEST_SCHEMA}"."${store.table}" (user_name) WHERE user_name IS NOT NULL AND user_name <> ''`,
    );
    const secret = 'super-secret-value-that-is-far-too-long';
    const error = await store.saveToken(userToken('long@x:1', { clientSecret: secret })).catch((caught: unknown) => caught);
    expect(TokenStoreError.is(error) && error.code).toBe('VALUE_TOO_LONG');
    expect(String((error as Error).message)).not.toContain(secret);
    expect(await store.getTokens()).toEqual([]);
    await store.close();
  });

  test('driver errors stay in cause; the message names the SQLSTATE only', async () => {
    const store = openStore({ createSchema: false });
    const error = await store.findToken(userToken('nobody@x:1')).catch((caught: unknown) => caught);
    expect(TokenStoreError.is(error) && error.code).toBe('BACKEND_FAILURE');
    expect((error as Error).message).toBe('PostgresTokenStore.findToken: PostgreSQL reported an error (SQLSTATE 42P01)');
    expect(((error as Error).cause as { code?: string }).code).toBe('42P01');
    await store.close();
  });
});

/** Incompressible text (PostgreSQL compresses repetitive values, which would hide a size limit). */
const randomText = (length: number) =>
  randomBytes(Math.ceil((length * 3) / 4))
    .toString('base64url')
    .slice(0, length);

/** The layout earlier versions created (btree lookup indexes `_ix`), with `rows` tokens in it. */
async function oldLayoutTable(table: string, rows: number): Promise<void> {
  const qualified = `"${TEST_SCHEMA}"."${table}"`;
  await ensureTestSchema(url);
  await adminQuery(
    url,
    `CREATE TABLE ${qualified} (id text PRIMARY KEY, user_name text, client_id text, client_secret text, refresh_token text,
       access_token text, grant_token text, expiry_time bigint, redirect_url text, api_domain text);
     CREATE UNIQUE INDEX "${table}_user_uq" ON ${qualified} (user_name) WHERE user_name IS NOT NULL AND user_name <> '';
     CREATE INDEX "${table}_access_ix" ON ${qualified} (access_token);
     CREATE INDEX "${table}_grant_ix" ON ${qualified} (grant_token);
     CREATE INDEX "${table}_refresh_ix" ON ${qualified} (refresh_token);
     INSERT INTO ${qualified} (id, user_name, access_token) SELECT 'i' || g, 'u' || g, 'a' || g FROM generate_series(1, ${rows}) AS g`,
  );
}

/** The indexes of a store's table: name to definition. */
async function tableIndexes(store: PostgresTokenStore): Promise<Map<string, string>> {
  const rows = await adminQuery<{ indexname: string; indexdef: string }>(
    url,
    'SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = $2',
    [store.schema, store.table],
  );
  return new Map(rows.map((row) => [row.indexname, row.indexdef]));
}

describe('long values', () => {
  const secretFields = ['accessToken', 'refreshToken', 'grantToken', 'clientSecret'] as const;

  test.each([3 * 1024, 8 * 1024, 64 * 1024])(
    'random %d-character values in every secret column round-trip and are found by findToken, on insert and update',
    async (size) => {
      const store = openStore();
      // findToken's rules: by access token without client id and secret; by grant or refresh token with both.
      const lookup = (field: (typeof secretFields)[number], value: string, extra: ConstructorParameters<typeof OAuthToken>[0] = {}) =>
        new OAuthToken(
          field === 'accessToken' ? { accessToken: value, ...extra } : { clientId: 'cid', clientSecret: 'cs', [field]: value, ...extra },
        );
      for (const [index, field] of secretFields.entries()) {
        const token = new OAuthToken({
          userSignature: new UserSignature(`long-${field}@x:1`),
          clientId: 'cid',
          clientSecret: 'cs',
          accessToken: `a-${field}`,
        });
        token[field] = randomText(size);
        const expected = token.clone();
        await store.saveToken(token);
        expect((await store.findTokenById(token.id as string))?.[field]).toBe(expected[field]);
        if (field !== 'clientSecret') {
          expect((await store.findToken(lookup(field, expected[field] as string)))?.id).toBe(token.id);
          // The save statement finds its target through the same index: a save by that token updates the row.
          await store.saveToken(lookup(field, expected[field] as string, { expiryTime: 1000 + index }));
          expect((await store.findTokenById(token.id as string))?.expiryTime).toBe(1000 + index);
        }
        // An update to another long value.
        const replacement = randomText(size);
        await store.saveToken(new OAuthToken({ id: token.id, accessToken: `a-${field}`, [field]: replacement }));
        expect((await store.findTokenById(token.id as string))?.[field]).toBe(replacement);
        if (field !== 'clientSecret') expect((await store.findToken(lookup(field, replacement)))?.id).toBe(token.id);
      }
      expect(await store.getTokens()).toHaveLength(secretFields.length);
      await store.close();
    },
  );

  test.each([3200, 12 * 1024])(
    'a random %d-character user name is VALUE_TOO_LONG naming user_name, and nothing is written',
    async (length) => {
      const store = openStore();
      const name = randomText(length);
      const error = await store.saveToken(userToken(name, { accessToken: 'a' })).catch((caught: unknown) => caught);
      expect(TokenStoreError.is(error) && error.code).toBe('VALUE_TOO_LONG');
      expect((error as Error).message).toMatch(/column user_name is longer than the column allows \(2704\)/);
      expect((error as Error).message).not.toContain(name.slice(0, 40));
      expect(await store.getTokens()).toEqual([]);
      // Renaming a stored token onto such a name fails the same way and changes nothing.
      const stored = userToken('short@x:1');
      await store.saveToken(stored);
      const rename = new OAuthToken({ id: stored.id, userSignature: new UserSignature(name), accessToken: 'new' });
      expect(await errorCode(store.saveToken(rename))).toBe('VALUE_TOO_LONG');
      const tokens = await store.getTokens();
      expect(tokens.map((token) => [token.userName, token.accessToken])).toEqual([['short@x:1', null]]);
      await store.close();
    },
  );

  test('a random id too long for the primary key is VALUE_TOO_LONG naming id', async () => {
    const store = openStore();
    const error = await store.saveToken(new OAuthToken({ id: randomText(3200), accessToken: 'a' })).catch((caught: unknown) => caught);
    expect(TokenStoreError.is(error) && error.code).toBe('VALUE_TOO_LONG');
    expect((error as Error).message).toMatch(/column id is longer/);
    expect(await store.getTokens()).toEqual([]);
    await store.close();
  });

  test('findToken and the save statement look tokens up through the hash indexes (10,000 rows, generic plans)', async () => {
    const store = openStore();
    await store.migrate();
    const table = `"${store.schema}"."${store.table}"`;
    await adminQuery(
      url,
      `INSERT INTO ${table} (id, user_name, access_token, refresh_token, grant_token)
       SELECT 'id' || g, 'u' || g, md5('a' || g), md5('r' || g), md5('g' || g) FROM generate_series(1, 10000) g;
       ANALYZE ${table}`,
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
          const rows = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN EXECUTE checked(${literals.join(', ')})`);
          return rows.rows.map((row) => row['QUERY PLAN']).join('\n');
        } finally {
          await client.query('DEALLOCATE checked');
        }
      };
      for (const [field, column, index] of [
        ['accessToken', 'access_token', 'access_hx'],
        ['refreshToken', 'refresh_token', 'refresh_hx'],
        ['grantToken', 'grant_token', 'grant_hx'],
      ] as const) {
        expect(await plan(sql.findBy[field].text, ['x'])).toMatch(`Index Scan using ${store.table}_${index}`);
        const save = sql.save({ hasId: false, field, mergeOn: null }).text;
        const values = [null, null, null, null, null, 'x', null, null, null, null, 'new-id', 'x'];
        expect(await plan(save, values)).toMatch(
          new RegExp(`Index Scan using ${store.table}_${index} .*\\n\\s*Index Cond: \\(${column} = \\$12\\)`),
        );
      }
    } finally {
      await client.end();
    }
    expect(
      (await store.findToken(new OAuthToken({ accessToken: (await adminQuery<{ a: string }>(url, "SELECT md5('a77') AS a"))[0]?.a })))?.id,
    ).toBe('id77');
    await store.close();
  });

  test('migrate() moves a table made by earlier versions from btree lookup indexes to hash indexes, also from many processes at once', async () => {
    const first = openStore({ createSchema: false });
    const qualified = `"${TEST_SCHEMA}"."${first.table}"`;
    await oldLayoutTable(first.table, 0);
    await adminQuery(
      url,
      `INSERT INTO ${qualified} (id, user_name, client_id, client_secret, access_token, refresh_token)
         VALUES ('old', 'old@x:1', 'cid', 'cs', 'old-access', 'old-refresh')`,
    );
    const long = randomText(8 * 1024);
    expect(await errorCode(first.saveToken(new OAuthToken({ accessToken: long })))).toBe('VALUE_TOO_LONG');

    // Several stores (each its own pool, as separate processes would be) migrate at once, then again.
    const others = [1, 2, 3].map(() => new PostgresTokenStore({ url, schema: TEST_SCHEMA, table: first.table }));
    await Promise.all([first.migrate(), ...others.map((store) => store.migrate())]);
    await first.migrate();
    await Promise.all(others.map((store) => store.close()));

    const indexes = await tableIndexes(first);
    expect([...indexes.keys()].sort()).toEqual(
      ['access_hx', 'grant_hx', 'pkey', 'refresh_hx', 'user_uq'].map((suffix) => `${first.table}_${suffix}`),
    );
    for (const column of ['access', 'grant', 'refresh']) {
      expect(indexes.get(`${first.table}_${column}_hx`)).toContain(`USING hash (${column}_token)`);
    }
    expect((await first.findToken(new OAuthToken({ clientId: 'cid', clientSecret: 'cs', refreshToken: 'old-refresh' })))?.id).toBe('old');
    expect((await first.findToken(new OAuthToken({ accessToken: 'old-access' })))?.id).toBe('old');
    const token = new OAuthToken({ accessToken: long });
    await first.saveToken(token);
    expect((await first.findToken(new OAuthToken({ accessToken: long })))?.id).toBe(token.id);
    expect(await first.getTokens()).toHaveLength(2);
    await first.close();
  });
});

describe('schema setup next to other work', () => {
  /**
   * Review 3, item 1: migrate() built the hash indexes (SHARE lock on the table) and then dropped the btree ones
   * (ACCESS EXCLUSIVE); a save that had parsed its statement (ACCESS SHARE) in between and waited for ROW
   * EXCLUSIVE deadlocked with it, and every migrate() failed with 40P01, leaving the btree indexes in place.
   */
  test('migrate() and the automatic setup on an old-layout table while other pools save: no failure, hash indexes', async () => {
    const first = openStore({ createSchema: false, operationTimeoutMs: 20000 });
    await oldLayoutTable(first.table, 20000);
    // Each store has its own pool, as separate processes would; half migrate explicitly, half on first use.
    const stores = [
      first,
      ...[1, 2, 3, 4, 5].map(
        (index) =>
          new PostgresTokenStore({
            url,
            schema: TEST_SCHEMA,
            table: first.table,
            createSchema: index % 2 === 0,
            operationTimeoutMs: 20000,
          }),
      ),
    ];
    for (let round = 0; round < 2; round++) {
      const results = await Promise.allSettled(
        stores.flatMap((store, index) => [
          ...(index % 2 === 0 ? [store.migrate()] : []),
          ...Array.from({ length: 8 }, (_, save) =>
            // Compressible, so it fits the old btree indexes too (a save may come before the migration).
            store.saveToken(userToken(`r${round}s${index}-${save}@x:1`, { accessToken: `${'x'.repeat(4000)}${round}-${index}-${save}` })),
          ),
        ]),
      );
      expect(results.filter((result) => result.status === 'rejected')).toEqual([]);
    }
    const indexes = await tableIndexes(first);
    expect([...indexes.keys()].sort()).toEqual(
      ['access_hx', 'grant_hx', 'pkey', 'refresh_hx', 'user_uq'].map((suffix) => `${first.table}_${suffix}`),
    );
    for (const column of ['access', 'grant', 'refresh']) {
      expect(indexes.get(`${first.table}_${column}_hx`)).toContain(`USING hash (${column}_token)`);
    }
    expect(await first.getTokens()).toHaveLength(20000 + 2 * 6 * 8);
    const long = new OAuthToken({ accessToken: randomText(8 * 1024) });
    await first.saveToken(long);
    expect((await first.findToken(new OAuthToken({ accessToken: long.accessToken })))?.id).toBe(long.id);
    await Promise.all(stores.map((store) => store.close()));
  }, 120000);

  test('when nothing is missing, migrate() and the first operation take no table lock (a long write transaction does not hold them up)', async () => {
    const store = openStore();
    await store.migrate();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      // ROW EXCLUSIVE until COMMIT: CREATE INDEX IF NOT EXISTS (SHARE) would wait for it even with nothing to create.
      await client.query(`BEGIN; INSERT INTO ${store.qualifiedTable} (id, access_token) VALUES ('held', 'held')`);
      const fresh = new PostgresTokenStore({ url, schema: TEST_SCHEMA, table: store.table, operationTimeoutMs: 2000 });
      await fresh.migrate();
      await fresh.saveToken(userToken('not-held@x:1'));
      expect(await fresh.getTokens()).toHaveLength(1);
      await fresh.close();
    } finally {
      await client.query('ROLLBACK');
      await client.end();
    }
    await store.close();
  });

  /**
   * Review 3, item 2: the advisory lock was per table, so stores on different tables of one new schema ran
   * CREATE SCHEMA IF NOT EXISTS at once, and 2-3 of 4 failed with 23505 on pg_namespace_nspname_index.
   */
  test('stores on different tables of one new schema all succeed on their concurrent first call', async () => {
    for (let round = 0; round < 3; round++) {
      const schema = `crm_new_${randomBytes(5).toString('hex')}`;
      const stores = Array.from({ length: 4 }, (_, index) => new PostgresTokenStore({ url, schema, table: `t${index}` }));
      try {
        const results = await Promise.allSettled(stores.map((store, index) => store.saveToken(userToken(`u${index}@x:1`))));
        expect(results.filter((result) => result.status === 'rejected')).toEqual([]);
        for (const store of stores) expect(await store.getTokens()).toHaveLength(1);
      } finally {
        await Promise.all(stores.map((store) => store.close()));
        await adminQuery(url, `DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      }
    }
  });
});

describe('errors never carry a secret', () => {
  test('a server-side failure during a save whose message, detail and hint quote the row: no secret in the error or its cause', async () => {
    const store = openStore();
    await addFaultTrigger(store, url);
    // Not in Zoho's token format, so only the values the store hands to the error remove them.
    const secrets = {
      clientSecret: 'client-secret-7f3a9c',
      refreshToken: 'refresh-token-91b2e4',
      accessToken: 'access-token-5d8c1f',
      grantToken: 'grant-token-c4e7a2',
    };
    const error = await store
      .saveToken(new OAuthToken({ userSignature: new UserSignature('fault@x:1'), clientId: 'client', ...secrets }))
      .catch((caught: unknown) => caught);
    expect(TokenStoreError.is(error) && [error.code, error.operation]).toEqual(['BACKEND_FAILURE', 'saveToken']);
    const cause = (error as Error).cause as { code?: string; message?: string };
    expect(cause.code).toBe('P0001'); // the trigger's RAISE really ran on the server
    expect(cause.message).toMatch(/^\[message removed: raised by a trigger/); // a trigger's text may quote stored values too
    const shown = inspect(error, { depth: Infinity, showHidden: true });
    for (const secret of Object.values(secrets)) expect(shown).not.toContain(secret);
    expect(await store.getTokens()).toEqual([]); // nothing was written
    await store.close();
  });
});

describe('isolation level: saves are correct whatever the pool defaults to', () => {
  test.each(['read committed', 'repeatable read', 'serializable'])(
    '%s: 40 parallel saves of one user, 40 of new users and deletes in between all succeed, and nothing is lost',
    async (isolation) => {
      // Only this pool's sessions default to the level: the shared server's settings stay as they are.
      const pool = new pg.Pool({
        connectionString: url,
        max: 10,
        options: `-c default_transaction_isolation=${isolation.replace(' ', '\\ ')}`,
      });
      const level = await pool.query<{ level: string }>(`SELECT current_setting('default_transaction_isolation') AS level`);
      expect(level.rows[0]?.level).toBe(isolation);
      const store = openStore({ url: undefined, pool });
      await store.saveToken(userToken('shared@x:1', { accessToken: 'first' }));
      const outcomes = await Promise.allSettled([
        ...Array.from({ length: 40 }, (_, index) =>
          store.saveToken(new OAuthToken({ userSignature: new UserSignature('shared@x:1'), accessToken: `a${index}` })),
        ),
        ...Array.from({ length: 40 }, (_, index) => store.saveToken(userToken(`new${index}@x:1`, { accessToken: `n${index}` }))),
        ...Array.from({ length: 5 }, () => store.deleteToken('no-such-id')),
      ]);
      expect(outcomes.filter((outcome) => outcome.status === 'rejected')).toEqual([]);
      const tokens = await store.getTokens();
      expect(tokens).toHaveLength(41);
      const shared = tokens.find((token) => token.userName === 'shared@x:1');
      expect(shared?.refreshToken).toBe('r-shared@x:1'); // kept through 40 concurrent merges
      expect(shared?.accessToken).toMatch(/^a\d+$/);
      await store.deleteTokens();
      expect(await store.getTokens()).toEqual([]);
      await store.close();
      await pool.end();
    },
  );
});

describe('connections', () => {
  test('a pool you pass in is used and stays open after close()', async () => {
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    const table = randomTable();
    tables.push(table);
    const store = new PostgresTokenStore({ pool, schema: TEST_SCHEMA, table });
    await store.saveToken(userToken('byo@x:1'));
    await store.close();
    expect((await pool.query('SELECT 1 AS one')).rows[0]).toEqual({ one: 1 });
    const again = new PostgresTokenStore({ pool, schema: TEST_SCHEMA, table });
    expect((await again.findToken(new OAuthToken({ userSignature: new UserSignature('byo@x:1') })))?.refreshToken).toBe('r-byo@x:1');
    await pool.end();
  });

  test('operations reuse pooled connections instead of opening one each', async () => {
    const store = openStore();
    const applicationName = `crm_reuse_${store.table}`;
    const counted = new PostgresTokenStore({
      url,
      schema: TEST_SCHEMA,
      table: store.table,
      poolConfig: { max: 2, application_name: applicationName },
    });
    for (let index = 0; index < 50; index++) await counted.saveToken(userToken(`reuse${index}@x:1`));
    const sessions = await adminQuery<{ n: number }>(url, 'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [
      applicationName,
    ]);
    expect(sessions[0]?.n).toBeLessThanOrEqual(2);
    await counted.close();
    await store.close();
  });

  test.each(['own pool', 'your pool'])(
    'after close() every call rejects with STORE_CLOSED, before looking at its argument (%s); close() twice is fine',
    async (kind) => {
      const pool = kind === 'your pool' ? new pg.Pool({ connectionString: url, max: 2 }) : undefined;
      const store = openStore(pool === undefined ? {} : { url: undefined, pool });
      await store.saveToken(userToken('closing@x:1'));
      await Promise.all([store.close(), store.close()]);
      await store.close();
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['findToken', () => store.findToken(userToken('closing@x:1'))],
        ['findToken', () => store.findToken(new OAuthToken({ clientId: 'only-client' }))], // rule 4: would not even query
        ['findToken', () => store.findToken('not a token' as never)],
        ['saveToken', () => store.saveToken(userToken('closing@x:1'))],
        ['findTokenById', () => store.findTokenById('x')],
        ['deleteToken', () => store.deleteToken('')],
        ['getTokens', () => store.getTokens()],
        ['deleteTokens', () => store.deleteTokens()],
        ['migrate', () => store.migrate()],
      ];
      for (const [operation, call] of calls) {
        await expect(call()).rejects.toMatchObject({ code: 'STORE_CLOSED', operation, store: STORE_NAME });
      }
      if (pool !== undefined) {
        expect((await pool.query(`SELECT count(*)::int AS n FROM ${store.qualifiedTable}`)).rows[0]).toEqual({ n: 1 });
        await pool.end();
      }
    },
  );

  test('operations in flight when close() is called either complete or reject with STORE_CLOSED, and close() waits for them', async () => {
    const store = openStore();
    await store.migrate();
    const saves = Array.from({ length: 10 }, (_, index) => store.saveToken(userToken(`inflight${index}@x:1`)));
    await store.close();
    const outcomes = await Promise.allSettled(saves);
    for (const outcome of outcomes) if (outcome.status === 'rejected') expect(outcome.reason).toMatchObject({ code: 'STORE_CLOSED' });
    const saved = outcomes.filter((outcome) => outcome.status === 'fulfilled').length;
    const reader = openStore({ table: store.table });
    expect(await reader.getTokens()).toHaveLength(saved);
    await reader.close();
  });
});

describe('races inside one process (many pooled connections)', () => {
  test('parallel inserts of one new id without user names end as one token', async () => {
    const store = openStore();
    await Promise.all(
      Array.from({ length: 20 }, (_, index) => store.saveToken(new OAuthToken({ id: 'same-id', accessToken: `a${index}` }))),
    );
    const tokens = await store.getTokens();
    expect(tokens.map((token) => token.id)).toEqual(['same-id']);
    await store.close();
  });

  test('parallel inserts of one new id with different user names end as one token (the unique-id race is retried as an update)', async () => {
    const store = openStore();
    const saves = Array.from(
      { length: 20 },
      (_, index) => new OAuthToken({ id: 'one-id', userSignature: new UserSignature(`u${index}`), accessToken: `a${index}` }),
    );
    const outcomes = await Promise.allSettled(saves.map((token) => store.saveToken(token)));
    expect(outcomes.filter((outcome) => outcome.status === 'rejected')).toEqual([]);
    const tokens = await store.getTokens();
    expect(tokens).toHaveLength(1);
    expect(tokens[0]?.id).toBe('one-id');
    await store.close();
  });

  test('parallel renames of different tokens onto one free user name: exactly one wins, the others get CONFLICT', async () => {
    const store = openStore();
    const owners = Array.from({ length: 10 }, (_, index) => userToken(`owner${index}`));
    for (const token of owners) await store.saveToken(token);
    const outcomes = await Promise.allSettled(
      owners.map((token) =>
        store.saveToken(new OAuthToken({ id: token.id, userSignature: new UserSignature('wanted'), accessToken: 'x' })),
      ),
    );
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(1);
    for (const outcome of outcomes) if (outcome.status === 'rejected') expect(outcome.reason).toMatchObject({ code: 'CONFLICT' });
    const names = (await store.getTokens()).map((token) => token.userName);
    expect(names.filter((name) => name === 'wanted')).toHaveLength(1);
    expect(names).toHaveLength(10);
    await store.close();
  });
});
