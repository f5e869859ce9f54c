/** `crm-tokens doctor` as users run it, on real stores: one line per check, nothing changed, exit codes. */
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { PostgresTokenStore } from '@crm/store-postgres';
import { SQLiteTokenStore } from '@crm/store-sqlite';
import {
  dropPostgresTable,
  expectNoSecret,
  POSTGRES_URL,
  randomName,
  runCli,
  sampleToken,
  secretsOf,
  tempFolder,
  unusableToken,
} from './helpers';

type PgClient = {
  connect(): Promise<void>;
  query(sql: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
  end(): Promise<void>;
};
const pg = createRequire(require.resolve('@crm/store-postgres'))('pg') as {
  Client: new (options: { connectionString: string }) => PgClient;
};

async function pgQuery(sql: string, values: unknown[] = []): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    return (await client.query(sql, values)).rows;
  } finally {
    await client.end();
  }
}

test('SQLite: a file readable by others is a warning; tokens, expired ones and the lock are counted (exit 0)', async () => {
  const folder = tempFolder();
  const filename = join(folder.path, 'zohooauth.db');
  const tokens = [sampleToken('ana@zylker.com:1'), sampleToken('bo@zylker.com:1', { expiryTime: Date.now() - 60_000 })];
  try {
    const store = new SQLiteTokenStore({ filename });
    for (const token of tokens) await store.saveToken(token);
    await store.close();
    chmodSync(filename, 0o644);
    const result = await runCli(['doctor', '--store', `sqlite:${filename}`]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^ok {4}connectivity {4}opened .* in \d+ ms$/m);
    expect(result.stdout).toMatch(/^ok {4}schema {10}table oauthtoken with Zoho's columns and a unique user name index$/m);
    expect(result.stdout).toMatch(/^warn {2}permissions {5}mode 0644: readable by group or others.*chmod 600/m);
    expect(result.stdout).toMatch(/^ok {4}tokens {10}2 stored$/m);
    expect(result.stdout).toMatch(/^ok {4}expired {9}1 with an expired access token/m);
    expect(result.stdout).toMatch(/^ok {4}unidentifiable {2}0 without/m);
    expect(result.stdout).toMatch(/^ok {4}lock {12}the store offers withLock/m);
    expectNoSecret(result.stdout + result.stderr, secretsOf(tokens));

    chmodSync(filename, 0o600);
    expect((await runCli(['doctor', '--store', `sqlite:${filename}`])).stdout).toMatch(/^ok {4}permissions {5}mode 0600/m);
  } finally {
    folder.remove();
  }
});

test('SQLite: a file that does not exist is reported and not created; a missing folder cannot be used (exit 3)', async () => {
  const folder = tempFolder();
  try {
    const absent = await runCli(['doctor', '--store', `sqlite:${join(folder.path, 'none.db')}`]);
    expect(absent.code).toBe(0);
    expect(absent.stdout).toMatch(/^warn {2}schema .*does not exist yet/m);
    expect(existsSync(join(folder.path, 'none.db'))).toBe(false);
    const noFolder = await runCli(['doctor', '--store', `sqlite:${join(folder.path, 'no', 'such.db')}`]);
    expect(noFolder.code).toBe(3);
    expect(noFolder.stdout).toMatch(/^fail {2}connectivity .*does not exist$/m);
  } finally {
    folder.remove();
  }
});

test('PostgreSQL: schema, table grants, and unidentifiable rows written behind the store', async () => {
  const table = randomName('crm_doctor');
  const tokens = [sampleToken('ana@zylker.com:2'), sampleToken('bo@zylker.com:2')];
  try {
    const store = new PostgresTokenStore({ url: POSTGRES_URL, table });
    for (const token of tokens) await store.saveToken(token);
    await store.close();
    await pgQuery(`INSERT INTO "${table}" (id, client_id) VALUES ('orphan0001', '1000.CLIENT')`);
    const result = await runCli(['doctor', '--store', `${POSTGRES_URL}?table=${table}`]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^ok {4}connectivity {4}connected and answered in \d+ ms$/m);
    expect(result.stdout).toContain(`ok    schema          table public.${table} with Zoho's columns and a unique user name index`);
    expect(result.stdout).toMatch(/^ok {4}permissions {5}\S+ has SELECT, INSERT, UPDATE, DELETE on the table$/m);
    expect(result.stdout).toMatch(/^ok {4}tokens {10}3 stored$/m);
    expect(result.stdout).toMatch(
      /^warn {2}unidentifiable {2}1 without a user name or any access, refresh or grant token \(orphan0001\)$/m,
    );
    expectNoSecret(result.stdout + result.stderr, secretsOf(tokens));
  } finally {
    await dropPostgresTable(table);
  }
});

test('PostgreSQL: a table that does not exist yet is reported and not created', async () => {
  const table = randomName('crm_doctor');
  try {
    const absent = await runCli(['doctor', '--store', `${POSTGRES_URL}?table=${table}`]);
    expect(absent.code).toBe(0);
    expect(absent.stdout).toMatch(/^warn {2}schema .*no table public\.\w+ yet/m);
    expect(absent.stdout).toMatch(/^ok {4}permissions {5}\S+ may create it$/m);
    expect(await pgQuery('SELECT 1 FROM information_schema.tables WHERE table_name = $1', [table])).toEqual([]);
  } finally {
    await dropPostgresTable(table);
  }
});

test('an unreachable server exits 3, and its password appears nowhere', async () => {
  const result = await runCli(['doctor', '--store', 'postgres://postgres:hunter2secret@127.0.0.1:1/test']);
  expect(result.code).toBe(3);
  expect(result.stdout).toMatch(/^fail {2}connectivity {4}ECONNREFUSED/m);
  expect(result.stdout).toContain('postgres://postgres:***@127.0.0.1:1/test');
  expect(result.stdout + result.stderr).not.toContain('hunter2secret');
});

test('a bad store URL is a usage error (exit 2)', async () => {
  expect((await runCli(['doctor', '--store', 'nosuch://x'])).code).toBe(2);
});

test('expired counts every expired access token; only tokens with no refresh or grant token cannot be used any more', async () => {
  const folder = tempFolder();
  const filename = join(folder.path, 'zohooauth.db');
  try {
    const store = new SQLiteTokenStore({ filename });
    await store.saveToken(sampleToken('refreshable@zylker.com', { expiryTime: Date.now() - 60_000 }));
    await store.saveToken(unusableToken('dead@zylker.com'));
    await store.close();
    chmodSync(filename, 0o600);
    const result = await runCli(['doctor', '--store', `sqlite:${filename}`]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /^warn {2}expired {9}2 with an expired access token; 1 of them have no refresh or grant token and cannot be used any more \(\w+\); crm-tokens purge --expired deletes those$/m,
    );
  } finally {
    folder.remove();
  }
});

test('a SQLite file is only read: its journal mode and bytes stay as they were', async () => {
  const folder = tempFolder();
  const filename = join(folder.path, 'zohooauth.db');
  try {
    const store = new SQLiteTokenStore({ filename, journalMode: 'DELETE' });
    await store.saveToken(sampleToken('ana@zylker.com'));
    await store.close();
    const before = readFileSync(filename);
    // Byte 18 of a SQLite file: 1 for a rollback journal, 2 once it is switched to WAL.
    expect(before[18]).toBe(1);
    const result = await runCli(['doctor', '--store', `sqlite:${filename}`]);
    expect(result.stdout).toMatch(/^ok {4}tokens {10}1 stored$/m);
    expect(readFileSync(filename).equals(before)).toBe(true);
    expect(existsSync(`${filename}-wal`)).toBe(false);
  } finally {
    folder.remove();
  }
});

test('a store package that is not installed is a usage error (exit 2) naming what to install', async () => {
  // The built command in a folder of its own whose dependencies lack @crm/store-postgres.
  const folder = tempFolder();
  try {
    const app = join(folder.path, 'app');
    cpSync(resolve(__dirname, '../bin'), join(app, 'bin'), { recursive: true });
    cpSync(resolve(__dirname, '../dist'), join(app, 'dist'), { recursive: true });
    cpSync(resolve(__dirname, '../package.json'), join(app, 'package.json'));
    const modules = resolve(__dirname, '../node_modules');
    mkdirSync(join(app, 'node_modules', '@crm'), { recursive: true });
    for (const name of ['commander', 'cli-table3', 'cli-progress']) symlinkSync(join(modules, name), join(app, 'node_modules', name));
    for (const name of readdirSync(join(modules, '@crm')).filter((entry) => entry !== 'store-postgres')) {
      symlinkSync(join(modules, '@crm', name), join(app, 'node_modules', '@crm', name));
    }
    const result = spawnSync(
      process.execPath,
      [join(app, 'bin/crm-tokens.js'), 'doctor', '--store', 'postgres://app:Pw0rdSecret@127.0.0.1:1/x'],
      {
        encoding: 'utf8',
        // Without the test runner's NODE_PATH, which reaches every package of the workspace.
        env: { PATH: process.env.PATH },
      },
    );
    expect(result.stderr).toContain('npm install @crm/store-postgres');
    expect(result.status).toBe(2);
    expect(result.stdout + result.stderr).not.toContain('Pw0rdSecret');
  } finally {
    folder.remove();
  }
});
