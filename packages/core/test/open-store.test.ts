import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { inspect, promisify } from 'node:util';
import {
  MemoryTokenStore,
  OAuthToken,
  openTokenStore,
  parseStoreUrl,
  redactUrl,
  type TokenStore,
  TokenStoreError,
  UserSignature,
} from '../src/index';

// Core depends on no store package, so the mapping from URL to store options is observed through `load`:
// it hands back a module whose store classes are MemoryTokenStore subclasses keeping the options they got.
// The CLI's tests open every real store through its URL.

const PASSWORD = 'pa55-word-9d8c7b';

class OptionsKept extends MemoryTokenStore {
  constructor(readonly options: Record<string, unknown>) {
    super();
  }
}

const EXPORTS: Record<string, string> = {
  '@crm/store-sqlite': 'SQLiteTokenStore',
  '@crm/store-file': 'FileTokenStore',
  '@crm/store-postgres': 'PostgresTokenStore',
  '@crm/store-redis': 'RedisTokenStore',
  '@crm/store-mysql': 'MySQLTokenStore',
};

/** A loader serving every store package; `loaded` lists the names it was asked for. */
function storeModules() {
  const loaded: string[] = [];
  const load = async (name: string) => {
    loaded.push(name);
    const exportName = EXPORTS[name];
    if (exportName === undefined) throw Object.assign(new Error(`Cannot find package '${name}'`), { code: 'ERR_MODULE_NOT_FOUND' });
    // A class of its own per package, named like the real one.
    return { [exportName]: class extends OptionsKept {} };
  };
  return { load, loaded };
}

async function opened(url: string): Promise<{ packageName: string; options: Record<string, unknown> }> {
  const { load, loaded } = storeModules();
  const store = await openTokenStore(url, { load });
  expect(store).toBeInstanceOf(OptionsKept);
  expect(loaded).toHaveLength(1);
  return { packageName: loaded[0] as string, options: (store as OptionsKept).options };
}

/** The error `promise` rejects with, checked to be a TokenStoreError of `code` that shows no password anywhere. */
async function refusal(promise: Promise<unknown>, code = 'INVALID_ARGUMENT'): Promise<TokenStoreError> {
  const error = await promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (rejection: unknown) => rejection,
  );
  expect(TokenStoreError.is(error)).toBe(true);
  const storeError = error as TokenStoreError;
  expect(storeError.code).toBe(code);
  expect(storeError.store).toBe('openTokenStore');
  expect(storeError.operation).toBe('open');
  const shown = `${storeError.message}\n${inspect(storeError, { depth: 10 })}\n${JSON.stringify(storeError)}`;
  expect(shown).not.toContain(PASSWORD);
  expect(shown).not.toContain(encodeURIComponent(PASSWORD));
  return storeError;
}

describe('openTokenStore: memory:', () => {
  it('opens a working in-memory store without loading anything', async () => {
    const { load, loaded } = storeModules();
    const store: TokenStore = await openTokenStore('memory:', { load });
    expect(store).toBeInstanceOf(MemoryTokenStore);
    await store.saveToken(new OAuthToken({ userSignature: new UserSignature('ada@example.com'), refreshToken: 'refresh-1' }));
    const tokens = await store.getTokens();
    expect(tokens.map((token) => token.userSignature?.name)).toEqual(['ada@example.com']);
    await store.close?.();
    expect(loaded).toEqual([]);
  });

  it('gives a new store per call', async () => {
    const first = await openTokenStore('memory:');
    const second = await openTokenStore('MEMORY:');
    await first.saveToken(new OAuthToken({ userSignature: new UserSignature('ada@example.com'), refreshToken: 'refresh-1' }));
    expect(await second.getTokens()).toEqual([]);
  });
});

describe('openTokenStore: file paths', () => {
  it.each([
    ['sqlite:./zohooauth.db', './zohooauth.db'],
    ['sqlite:zohooauth.db', 'zohooauth.db'],
    ['sqlite:/var/lib/crm/tokens.db', '/var/lib/crm/tokens.db'],
    ['sqlite::memory:', ':memory:'],
    ['sqlite:///var/lib/crm/tokens.db', '/var/lib/crm/tokens.db'],
    ['sqlite://localhost/var/lib/crm/tokens.db', '/var/lib/crm/tokens.db'],
    ['sqlite:///tmp/my%20tokens%3F.db', '/tmp/my tokens?.db'],
    ['SQLite:../up/tokens.db', '../up/tokens.db'],
  ])('%s opens SQLiteTokenStore on %s', async (url, filename) => {
    expect(await opened(url)).toEqual({ packageName: '@crm/store-sqlite', options: { filename } });
  });

  it('reads the SQLite store options from the query', async () => {
    const { options } = await opened(
      'sqlite:./tokens.db?table=crm_tokens&operationTimeoutMs=2000&journalMode=DELETE&readonly=true&createSchema=0',
    );
    expect(options).toEqual({
      filename: './tokens.db',
      table: 'crm_tokens',
      operationTimeoutMs: 2000,
      journalMode: 'DELETE',
      readonly: true,
      createSchema: false,
    });
  });

  it.each([
    ['file:./sdk_tokens.txt', './sdk_tokens.txt'],
    ['file:sdk_tokens.txt', 'sdk_tokens.txt'],
    ['file:/home/crm/sdk_tokens.txt', '/home/crm/sdk_tokens.txt'],
    ['file:///home/crm/sdk_tokens.txt', '/home/crm/sdk_tokens.txt'],
  ])('%s opens FileTokenStore on %s', async (url, filename) => {
    expect(await opened(url)).toEqual({ packageName: '@crm/store-file', options: { filename } });
  });

  it('reads the file store options from the query', async () => {
    const { options } = await opened('file:./sdk_tokens.txt?operationTimeoutMs=100&staleLockMs=20000');
    expect(options).toEqual({ filename: './sdk_tokens.txt', operationTimeoutMs: 100, staleLockMs: 20000 });
  });
});

describe('openTokenStore: servers', () => {
  it.each([
    ['postgres://crm@db.example.com:5432/crm', '@crm/store-postgres'],
    ['postgresql://crm@db.example.com/crm', '@crm/store-postgres'],
    ['redis://localhost:6379', '@crm/store-redis'],
    ['rediss://cache.example.com:6380/2', '@crm/store-redis'],
    ['mysql://root@localhost:3306/zohooauth', '@crm/store-mysql'],
    ['mariadb://root@localhost/zohooauth', '@crm/store-mysql'],
  ])('%s goes to %s as it is', async (url, packageName) => {
    expect(await opened(url)).toEqual({ packageName, options: { url } });
  });

  it('keeps the password in the URL the store gets', async () => {
    const url = `postgres://crm:${PASSWORD}@db.example.com/crm`;
    expect((await opened(url)).options).toEqual({ url });
  });

  it('takes the store parameters out of the URL and leaves the driver parameters in it', async () => {
    expect(
      (await opened(`postgres://crm:${PASSWORD}@db/crm?table=tokens&schema=crm&sslmode=require&operationTimeoutMs=3000`)).options,
    ).toEqual({
      url: `postgres://crm:${PASSWORD}@db/crm?sslmode=require`,
      table: 'tokens',
      schema: 'crm',
      operationTimeoutMs: 3000,
    });
    expect((await opened('redis://localhost:6379/1?prefix=app-tokens&maxSaveAttempts=3')).options).toEqual({
      url: 'redis://localhost:6379/1',
      prefix: 'app-tokens',
      maxSaveAttempts: 3,
    });
    expect((await opened('mysql://root@localhost/crm?connectionLimit=4&table=crm.oauthtoken&createSchema=false')).options).toEqual({
      url: 'mysql://root@localhost/crm?connectionLimit=4',
      table: 'crm.oauthtoken',
      createSchema: false,
    });
  });

  it('passes a store option value through for the store to check', async () => {
    // The store's own checks (name patterns, ranges) decide; their errors hold no secrets.
    expect((await opened('postgres://db/crm?table=no%20such%20name')).options.table).toBe('no such name');
  });
});

describe('openTokenStore: refusals', () => {
  const refused: Array<[string, RegExp]> = [
    ['', /non-empty/],
    ['   ', /non-empty/],
    ['zohooauth.db', /has no scheme; the accepted forms are memory:, sqlite:.*file:.*postgres:.*redis:.*mysql:/],
    [`mongodb://crm:${PASSWORD}@db/crm`, /unknown scheme mongodb:; the accepted forms are memory:, sqlite:/],
    [`http://crm:${PASSWORD}@db/crm`, /unknown scheme http:/],
    ['memory:extra', /memory: takes nothing after the scheme/],
    ['sqlite:', /sqlite: needs a file path, as in sqlite:\.\/zohooauth\.db/],
    ['sqlite:?table=tokens', /sqlite: needs a file path/],
    ['sqlite://example.com/tokens.db', /sqlite:\/\/ must be followed by an absolute path/],
    ['file:', /file: needs a file path/],
    ['sqlite:./a.db?tabel=tokens', /a sqlite: URL takes no parameter tabel; it takes the store's table, operationTimeoutMs/],
    ['sqlite:./a.db?table=a&table=b', /parameter table more than once/],
    ['sqlite:./a.db?table=', /parameter table has no value/],
    ['sqlite:./a.db?operationTimeoutMs=fast', /operationTimeoutMs must be a whole number/],
    ['sqlite:./a.db?operationTimeoutMs=-1', /operationTimeoutMs must be a whole number/],
    ['sqlite:./a.db?readonly=yes', /readonly must be true or false/],
    ['file:./sdk.txt?table=tokens', /a file: URL takes no parameter table; it takes the store's operationTimeoutMs, staleLockMs$/],
    [
      `postgres://crm:${PASSWORD}@db/crm?tabel=tokens`,
      /a postgres:\/\/ URL takes no parameter tabel; it takes the store's schema, table.* and the driver's host/,
    ],
    [`postgres://crm:${PASSWORD}@db/crm?prefix=x`, /takes no parameter prefix/],
    [`redis://:${PASSWORD}@cache?schema=x`, /a redis:\/\/ URL takes no parameter schema; it takes the store's prefix/],
    [`mysql://crm:${PASSWORD}@db/crm?rowsAsArray=true`, /a mysql:\/\/ URL takes no parameter rowsAsArray/],
    [`postgres:crm:${PASSWORD}@db/crm`, /a postgres: URL starts with postgres:\/\//],
    [`postgres://crm:${PASSWORD}@db:port/crm`, /not a valid postgres: URL; write it as postgres:\/\/user:password@host:5432\/database/],
    [`mysql://crm:${PASSWORD}@db:99999/crm`, /not a valid mysql: URL/],
  ];

  it.each(refused)('%j is refused (%s) without loading a package', async (url, message) => {
    const { load, loaded } = storeModules();
    const error = await refusal(openTokenStore(url, { load }));
    expect(error.message).toMatch(message);
    expect(loaded).toEqual([]);
  });

  it('refuses what is not a string, and bad options', async () => {
    await refusal(openTokenStore(undefined as unknown as string));
    await refusal(openTokenStore(42 as unknown as string));
    await refusal(openTokenStore('memory:', null as unknown as object));
    expect((await refusal(openTokenStore('memory:', { load: 'import' as unknown as () => Promise<unknown> }))).message).toMatch(
      /load must be a function/,
    );
  });
});

describe('openTokenStore: loading the store package', () => {
  it('says what to install when the store package is missing, in a process of its own', async () => {
    // Real: a child process without NODE_PATH (which pnpm's scripts set to every installed package) runs the
    // default loader, and from core's folder no store package resolves.
    const urls: Array<[string, string]> = [
      ['sqlite:./zohooauth.db', '@crm/store-sqlite'],
      ['file:./sdk_tokens.txt', '@crm/store-file'],
      [`postgres://crm:${PASSWORD}@db/crm`, '@crm/store-postgres'],
      [`postgresql://crm:${PASSWORD}@db/crm?table=t`, '@crm/store-postgres'],
      [`redis://:${PASSWORD}@cache:6379`, '@crm/store-redis'],
      [`rediss://:${PASSWORD}@cache:6379`, '@crm/store-redis'],
      [`mysql://crm:${PASSWORD}@db/crm`, '@crm/store-mysql'],
      [`mariadb://crm:${PASSWORD}@db/crm`, '@crm/store-mysql'],
    ];
    const script = `
      import { inspect } from 'node:util';
      import { openTokenStore } from ${JSON.stringify(resolve(__dirname, '../src/index.ts'))};
      const seen = [];
      for (const url of ${JSON.stringify(urls.map(([url]) => url))}) {
        const error = await openTokenStore(url).then(() => null, (rejection) => rejection);
        seen.push({ code: error?.code, message: error?.message, shown: inspect(error, { depth: 10 }) });
      }
      console.log(JSON.stringify(seen));
    `;
    const env = { ...process.env };
    delete env.NODE_PATH;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: resolve(__dirname, '..'),
      env,
    });
    const seen = JSON.parse(stdout) as Array<{ code: string; message: string; shown: string }>;
    expect(seen).toHaveLength(urls.length);
    urls.forEach(([, packageName], index) => {
      const { code, message, shown } = seen[index] as { code: string; message: string; shown: string };
      expect(code).toBe('INVALID_ARGUMENT');
      expect(message).toMatch(new RegExp(`^openTokenStore\\.open: a [a-z]+:(//)? URL needs ${packageName}: npm install ${packageName}$`));
      expect(shown).toContain(`Cannot find package '${packageName}'`);
      expect(shown).not.toContain(PASSWORD);
    });
  });

  it('reports a missing store package the same way when the loader is CommonJS require', async () => {
    const requireLike = async (name: string) => {
      throw Object.assign(new Error(`Cannot find module '${name}'\nRequire stack:\n- /app/cli.js`), { code: 'MODULE_NOT_FOUND' });
    };
    const error = await refusal(openTokenStore(`mysql://crm:${PASSWORD}@db/crm`, { load: requireLike }));
    expect(error.message).toMatch(/needs @crm\/store-mysql: npm install @crm\/store-mysql$/);
  });

  it('tells a package that fails to load from one that is missing', async () => {
    const brokenDependency = async () => {
      throw Object.assign(new Error("Cannot find package 'pg' imported from /app/node_modules/@crm/store-postgres/dist/index.js"), {
        code: 'ERR_MODULE_NOT_FOUND',
      });
    };
    const error = await refusal(openTokenStore(`postgres://crm:${PASSWORD}@db/crm`, { load: brokenDependency }), 'BACKEND_FAILURE');
    expect(error.message).toMatch(/@crm\/store-postgres is installed but could not be loaded/);
    expect(inspect(error)).toMatch(/Cannot find package 'pg'/);

    const syntaxError = async () => {
      throw new SyntaxError('Unexpected token');
    };
    const broken = await refusal(openTokenStore(`redis://:${PASSWORD}@cache`, { load: syntaxError }), 'BACKEND_FAILURE');
    expect(broken.message).toMatch(/@crm\/store-redis is installed but could not be loaded/);
    expect((broken.cause as Error).message).toBe('Unexpected token');
  });

  it('checks that the package exports the store class', async () => {
    const error = await refusal(
      openTokenStore('sqlite:./a.db', { load: async () => ({ SqliteTokenStore: OptionsKept }) }),
      'BACKEND_FAILURE',
    );
    expect(error.message).toMatch(/@crm\/store-sqlite does not export SQLiteTokenStore/);
    await refusal(openTokenStore('sqlite:./a.db', { load: async () => ({ SQLiteTokenStore: 'not a class' }) }), 'BACKEND_FAILURE');
    await refusal(openTokenStore('sqlite:./a.db', { load: async () => null }), 'BACKEND_FAILURE');
  });

  it('finds the class on a CommonJS module seen through default', async () => {
    const store = await openTokenStore('file:./t.txt', { load: async () => ({ default: { FileTokenStore: OptionsKept } }) });
    expect((store as OptionsKept).options).toEqual({ filename: './t.txt' });
  });

  it("passes the store constructor's own error through", async () => {
    const refusedByStore = TokenStoreError.invalidArgument({ store: 'PostgresTokenStore', operation: 'open' }, 'table must be ...');
    class Refusing extends MemoryTokenStore {
      constructor() {
        super();
        throw refusedByStore;
      }
    }
    await expect(openTokenStore('postgres://db/crm?table=x-y', { load: async () => ({ PostgresTokenStore: Refusing }) })).rejects.toBe(
      refusedByStore,
    );
  });
});

describe('parseStoreUrl', () => {
  it('reads a URL as openTokenStore does, loading nothing', () => {
    expect(parseStoreUrl(`postgres://crm:${PASSWORD}@db/crm?table=tokens&sslmode=require`)).toEqual({
      packageName: '@crm/store-postgres',
      storeName: 'PostgresTokenStore',
      options: { url: `postgres://crm:${PASSWORD}@db/crm?sslmode=require`, table: 'tokens' },
    });
    expect(parseStoreUrl('sqlite::memory:?table=t')).toEqual({
      packageName: '@crm/store-sqlite',
      storeName: 'SQLiteTokenStore',
      options: { filename: ':memory:', table: 't' },
    });
    expect(parseStoreUrl('memory:')).toEqual({ packageName: null, storeName: 'MemoryTokenStore', options: {} });
  });

  it('refuses what openTokenStore refuses, without the password', () => {
    expect(() => parseStoreUrl(`redis://:${PASSWORD}@cache?table=x`)).toThrow(/takes no parameter table/);
    try {
      parseStoreUrl(`postgres://crm:${PASSWORD}@db:port/crm`);
    } catch (error) {
      expect(TokenStoreError.is(error) && error.code).toBe('INVALID_ARGUMENT');
      expect(inspect(error)).not.toContain(PASSWORD);
    }
    expect.assertions(3);
  });
});

describe('redactUrl', () => {
  it.each([
    [`postgres://crm:${PASSWORD}@db.example.com:5432/crm`, 'postgres://crm:***@db.example.com:5432/crm'],
    [`postgresql://crm:${PASSWORD}@db/crm?table=t&sslmode=require`, 'postgresql://crm:***@db/crm?table=t&sslmode=require'],
    [`redis://:${PASSWORD}@cache:6379/2`, 'redis://:***@cache:6379/2'],
    [`rediss://default:${PASSWORD}@cache:6380`, 'rediss://default:***@cache:6380'],
    [`mysql://root:${encodeURIComponent(`${PASSWORD}@:/#?`)}@db/crm`, 'mysql://root:***@db/crm'],
    [`mysql://root:p@ss@db/crm`, 'mysql://root:***@db/crm'],
    [`postgres://crm@db/crm?password=${PASSWORD}&sslmode=require`, 'postgres://crm@db/crm?password=***&sslmode=require'],
    [`mysql://crm@db/crm?sslpassword=${PASSWORD}`, 'mysql://crm@db/crm?sslpassword=***'],
    ['postgres://crm@db/crm', 'postgres://crm@db/crm'],
    ['redis://localhost:6379', 'redis://localhost:6379'],
    ['mysql://root:@db/crm', 'mysql://root:@db/crm'],
    ['sqlite:./zohooauth.db', 'sqlite:./zohooauth.db'],
    ['sqlite::memory:', 'sqlite::memory:'],
    ['file:///home/crm/sdk_tokens.txt', 'file:///home/crm/sdk_tokens.txt'],
    ['memory:', 'memory:'],
    ['not a url', 'not a url'],
  ])('%s -> %s', (url, shown) => {
    expect(redactUrl(url)).toBe(shown);
  });

  it('hides all that could be a password when the URL does not parse', () => {
    const shown = redactUrl(`postgres://crm:${PASSWORD}/x@db:port/crm`);
    expect(shown).not.toContain(PASSWORD);
    expect(shown).toBe('postgres://***@db:port/crm');
  });

  it.each([
    [`postgres://crm:1234/${PASSWORD}@db/crm`, 'postgres://crm:***@db/crm'],
    [`redis://crm:99?${PASSWORD}@cache:6379`, 'redis://crm:***@cache:6379'],
    [`mysql://root:7#${PASSWORD}@db/crm`, 'mysql://root:***@db/crm'],
  ])('hides a password that holds an unencoded /, ? or #: %s', (url, shown) => {
    // The URL parser reads these as a host and a numeric port: what follows could be the password.
    expect(redactUrl(url)).toBe(shown);
  });

  it('may hide more than the password, never less: an @ in the query of a URL with a port', () => {
    expect(redactUrl('postgres://db:5432/crm?application_name=ops@example')).toBe('postgres://db:***@example');
  });

  it('returns an empty string for what is not a string', () => {
    expect(redactUrl(undefined as unknown as string)).toBe('');
  });
});

describe('openTokenStore: credentials belong in the URL', () => {
  // A driver reads a query password in its own way (mysql2 not at all, ioredis only without user information,
  // pg over the URL's own): one place for credentials, the user:password part, leaves nothing to guess.
  it.each([
    `mysql://root@db/crm?password=${PASSWORD}`,
    `mariadb://root@db/crm?user=crm`,
    `postgres://crm@db/crm?password=${PASSWORD}`,
    `postgres://crm:${PASSWORD}@db/crm?user=other`,
    `redis://default@cache?password=${PASSWORD}`,
    `rediss://cache?username=crm`,
  ])('%s is refused, naming the user:password part', async (url) => {
    const { load, loaded } = storeModules();
    const error = await refusal(openTokenStore(url, { load }));
    expect(error.message).toMatch(/gives (a user|a password|the user|the password)|as a query parameter/);
    expect(error.message).toMatch(/in the URL's user:password part/);
    expect(loaded).toEqual([]);
  });
});

describe('openTokenStore: redis database number', () => {
  it.each([
    ['redis://cache:6379/0', undefined],
    ['redis://cache:6379/15', undefined],
    ['redis://cache:6379?db=3', '3'],
    ['redis://cache:6379/?db=0', '0'],
  ])('%s is taken', async (url, db) => {
    const { options } = await opened(url);
    expect(new URL(options.url as string).searchParams.get('db') ?? undefined).toBe(db);
  });

  it.each([
    ['redis://cache:6379?db=abc', /db must be a whole number from 0 to 65535/],
    ['redis://cache:6379?db=-1', /db must be a whole number from 0 to 65535/],
    ['redis://cache:6379?db=1.5', /db must be a whole number from 0 to 65535/],
    ['redis://cache:6379?db=65536', /db must be a whole number from 0 to 65535/],
    ['redis://cache:6379?db=', /parameter db has no value/],
    ['redis://cache:6379/abc', /the path of a redis:\/\/ URL is the database number, a whole number from 0 to 65535/],
    ['redis://cache:6379/5/tokens', /the path of a redis:\/\/ URL is the database number/],
    ['redis://cache:6379/99999', /the path of a redis:\/\/ URL is the database number/],
    ['rediss://cache:6379/5?db=3', /gives the database number twice, as \/5 and as db=3; give it once/],
    ['redis://cache:6379/5?db=5', /gives the database number twice/],
  ])('%s is refused (%s)', async (url, message) => {
    const { load, loaded } = storeModules();
    expect((await refusal(openTokenStore(url, { load }))).message).toMatch(message);
    expect(loaded).toEqual([]);
  });
});

describe('openTokenStore: driver parameter values', () => {
  it.each([
    'mysql://root@db/crm?ssl=Amazon%20RDS',
    'mysql://root@db/crm?ssl=%7B%22rejectUnauthorized%22%3Atrue%7D',
    'mysql://root@db/crm?ssl={"rejectUnauthorized":false,"verifyIdentity":true,"minVersion":"TLSv1.2"}',
    'mysql://root@db/crm?ssl={}',
    'mysql://root@db/crm?ssl=false',
    'mysql://root@db/crm?connectionLimit=4&maxIdle=0&idleTimeout=60000&queueLimit=0&maxPreparedStatements=100',
    'mysql://root@db/crm?waitForConnections=false&enableKeepAlive=1&keepAliveInitialDelay=0&compress=true',
    'mysql://root@db/crm?insecureAuth=0&enableCleartextPlugin=true&socketPath=/run/mysqld/mysqld.sock&localAddress=10.0.0.2',
    'mysql://root@db/crm?flags=-FOUND_ROWS,multi_statements',
    'postgres:///crm?host=/var/run/postgresql',
    'postgres://crm@db/crm?port=5433',
    'postgres://crm@db/crm?ssl=true&sslmode=verify-full&sslrootcert=/etc/ca.pem&sslcert=/etc/c.pem&sslkey=/etc/k.pem',
    'postgres://crm@db/crm?ssl=0&sslnegotiation=postgres&uselibpqcompat=true&sslmode=require',
    'postgres://crm@db/crm?sslmode=no-verify&sslnegotiation=direct',
    'postgres://crm@db/crm?application_name=crm&fallback_application_name=x&options=-c%20search_path%3Dcrm&client_encoding=UTF8',
    'redis://cache?family=6&connectionName=crm-tokens',
  ])('%s passes on as written', async (url) => {
    const { options } = await opened(url);
    expect(new URL(options.url as string).searchParams.toString()).toBe(new URL(url).searchParams.toString());
  });

  it('passes ssl=false on to pg as 0, which it reads as off (it reads the text false as on)', async () => {
    expect((await opened('postgres://crm@db/crm?ssl=false')).options.url).toBe('postgres://crm@db/crm?ssl=0');
  });

  it.each([
    ['mysql://root@db/crm?ssl=foo', /ssl must be the profile name Amazon RDS, false or a JSON object/],
    ['mysql://root@db/crm?ssl=true', /ssl must be the profile name Amazon RDS, false or a JSON object/],
    ['mysql://root@db/crm?ssl={"rejectUnauthorized":"no"}', /ssl: rejectUnauthorized must be true or false/],
    ['mysql://root@db/crm?ssl={"minVersion":"TLSv9"}', /ssl: minVersion must be one of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3/],
    ['mysql://root@db/crm?ssl={"key":"-----BEGIN"}', /ssl takes no key; it takes rejectUnauthorized, verifyIdentity/],
    ['mysql://root@db/crm?ssl=[1]', /ssl must be the profile name Amazon RDS, false or a JSON object/],
    ['mysql://root@db/crm?connectionLimit=0', /connectionLimit must be a whole number from 1 to 2147483647/],
    ['mysql://root@db/crm?connectionLimit=many', /connectionLimit must be a whole number/],
    ['mysql://root@db/crm?idleTimeout=3000000000', /idleTimeout must be a whole number from 0 to 2147483647/],
    ['mysql://root@db/crm?queueLimit=-1', /queueLimit must be a whole number/],
    ['mysql://root@db/crm?waitForConnections=no', /waitForConnections must be true or false \(or 1 or 0\)/],
    ['mysql://root@db/crm?compress=False', /compress must be true or false/],
    ['mysql://root@db/crm?flags=FOUND_ROW', /flags: FOUND_ROW is not a MySQL client flag/],
    ['mysql://root@db/crm?socketPath=', /parameter socketPath has no value/],
    ['postgres://crm@db/crm?port=abc', /port must be a whole number from 1 to 65535/],
    ['postgres://crm@db:5432/crm?port=5433', /gives the port twice, in the URL and as port=; give it once/],
    ['postgres://crm@db/crm?host=other', /gives the host twice, in the URL and as host=; give it once/],
    ['postgres://crm@db/crm?ssl=yes', /ssl must be true or false \(or 1 or 0\)/],
    ['postgres://crm@db/crm?sslmode=required', /sslmode must be one of disable, prefer, require, verify-ca, verify-full, no-verify/],
    ['postgres://crm@db/crm?sslnegotiation=tls', /sslnegotiation must be one of postgres, direct/],
    ['postgres://crm@db/crm?sslnegotiation=direct&sslmode=disable', /sslnegotiation=direct needs SSL/],
    ['postgres://crm@db/crm?sslnegotiation=direct&ssl=0', /sslnegotiation=direct needs SSL/],
    ['postgres://crm@db/crm?uselibpqcompat=yes', /uselibpqcompat must be true or false/],
    ['postgres://crm@db/crm?uselibpqcompat=true&sslmode=verify-ca', /sslmode=verify-ca needs sslrootcert/],
    ['redis://cache?family=5', /family must be one of 0, 4, 6/],
    ['redis://cache?connectionName=crm%20tokens', /connectionName must be printable characters without spaces/],
  ])('%s is refused (%s) without loading a package', async (url, message) => {
    const { load, loaded } = storeModules();
    expect((await refusal(openTokenStore(url, { load }))).message).toMatch(message);
    expect(loaded).toEqual([]);
  });

  it('never repeats a refused value that may be secret', async () => {
    const error = await refusal(openTokenStore(`mysql://root@db/crm?ssl={"passphrase":"${PASSWORD}"}`, { load: storeModules().load }));
    expect(error.message).toMatch(/ssl takes no passphrase/);
  });
});
