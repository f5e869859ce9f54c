/** `crm-tokens migrate` as users run it, between real stores: ids kept, idempotent, verified, conflicts left alone. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import type { OAuthToken, TokenStore } from '@crm/core';
import { PostgresTokenStore } from '@crm/store-postgres';
import { RedisTokenStore } from '@crm/store-redis';
import { SQLiteTokenStore } from '@crm/store-sqlite';
import {
  dropPostgresTable,
  expectNoSecret,
  POSTGRES_URL,
  REDIS_URL,
  randomName,
  runCli,
  sampleToken,
  secretsOf,
  tempFolder,
} from './helpers';

const MYSQL_URL = process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

/** Every field as plain values, the signature by its name, for comparing tokens across stores. */
const fieldsOf = (token: OAuthToken) => ({ ...token.toFields(), userSignature: token.userSignature?.name ?? null });
const byId = (tokens: OAuthToken[]) => [...tokens].sort((a, b) => String(a.id).localeCompare(String(b.id))).map(fieldsOf);

async function readAll(store: TokenStore): Promise<OAuthToken[]> {
  try {
    return await store.getTokens();
  } finally {
    await store.close?.();
  }
}

/** Zoho's sdk_tokens.txt as the Node SDK writes it: its ids "1", "2", ..., no quoting, empty fields for absent values. */
function writeZohoFile(filename: string, tokens: OAuthToken[]): void {
  const header = 'id,user_name,client_id,client_secret,refresh_token,access_token,grant_token,expiry_time,redirect_url,api_domain';
  const lines = tokens.map((token) =>
    [
      token.id,
      token.userSignature?.name,
      token.clientId,
      token.clientSecret,
      token.refreshToken,
      token.accessToken,
      token.grantToken,
      token.expiryTime,
      token.redirectUrl,
      token.apiDomain,
    ]
      .map((value) => (value === null || value === undefined ? '' : String(value)))
      .join(','),
  );
  writeFileSync(filename, [header, ...lines].join('\n'), { mode: 0o600 });
}

function withId(token: OAuthToken, id: string): OAuthToken {
  token.id = id;
  return token;
}

test("from Zoho's sdk_tokens.txt into PostgreSQL: every token with its id, verified; a second run copies nothing", async () => {
  const folder = tempFolder();
  const table = randomName('crm_migrate');
  const tokens = [
    withId(sampleToken('ana@zylker.com:1'), '1'),
    withId(sampleToken('bo@zylker.com:1', { expiryTime: null }), '2'),
    withId(sampleToken('cy@zylker.com:1'), '3'),
  ];
  tokens[1]!.accessToken = null;
  tokens[1]!.grantToken = null;
  try {
    const source = `file:${join(folder.path, 'sdk_tokens.txt')}`;
    writeZohoFile(join(folder.path, 'sdk_tokens.txt'), tokens);
    const target = `${POSTGRES_URL}?table=${table}`;
    const first = await runCli(['migrate', '--from', source, '--to', target]);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^copying 1\/3: copied 1$/m);
    expect(first.stdout).toMatch(/^3 copied, 0 already there, 0 conflicts$/m);
    expect(first.stdout).toMatch(/^verified: the target holds 3 tokens; the 3 migrated match the source in every field$/m);
    expect(byId(await readAll(new PostgresTokenStore({ url: POSTGRES_URL, table })))).toEqual(byId(tokens));

    const second = await runCli(['migrate', '--from', source, '--to', target]);
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/^0 copied, 3 already there, 0 conflicts$/m);
    expect(second.stdout).not.toContain('copying');
    expectNoSecret(first.stdout + first.stderr + second.stdout + second.stderr, secretsOf(tokens));
  } finally {
    folder.remove();
    await dropPostgresTable(table);
  }
});

test("from Zoho's MySQL table (DBStore's layout and its numeric ids) into Redis", async () => {
  const mysql = createRequire(require.resolve('@crm/store-mysql'))('mysql2/promise') as {
    createConnection(url: string): Promise<{ query(sql: string, values?: unknown[]): Promise<unknown>; end(): Promise<void> }>;
  };
  // DBStore's documented table, as packages/store-mysql/test/conformance-options.ts creates it.
  const zohoCreateTable = (name: string) =>
    `CREATE TABLE ${name} (id varchar(10) NOT NULL, user_name varchar(255), client_id varchar(255), client_secret varchar(255), refresh_token varchar(255), access_token varchar(255), grant_token varchar(255), expiry_time varchar(20), redirect_url varchar(255), api_domain varchar(255), primary key (id));`;
  const table = randomName('crm_migrate');
  const prefix = `crm-test:${randomName('migrate')}`;
  const tokens = [withId(sampleToken('ana@zylker.com:7'), '1'), withId(sampleToken('bo@zylker.com:7'), '2')];
  const connection = await mysql.createConnection(MYSQL_URL);
  try {
    await connection.query(zohoCreateTable(table));
    for (const token of tokens) {
      const row = fieldsOf(token);
      await connection.query(`INSERT INTO ${table} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
        row.id,
        row.userSignature,
        row.clientId,
        row.clientSecret,
        row.refreshToken,
        row.accessToken,
        row.grantToken,
        String(row.expiryTime),
        row.redirectUrl,
        row.apiDomain,
      ]);
    }
    const result = await runCli(['migrate', '--from', `${MYSQL_URL}?table=${table}`, '--to', `${REDIS_URL}?prefix=${prefix}`]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^2 copied, 0 already there, 0 conflicts$/m);
    expect(byId(await readAll(new RedisTokenStore({ url: REDIS_URL, prefix })))).toEqual(byId(tokens));
    expectNoSecret(result.stdout + result.stderr, secretsOf(tokens));
  } finally {
    await connection.query(`DROP TABLE IF EXISTS ${table}`);
    await connection.end();
    const store = new RedisTokenStore({ url: REDIS_URL, prefix });
    await store.deleteTokens();
    await store.close();
  }
});

test('SQLite to SQLite: --dry-run writes nothing (not even the file), then the copy, then a run that copies nothing', async () => {
  const folder = tempFolder();
  const tokens = [sampleToken('ana@zylker.com:2'), sampleToken('bo@zylker.com:2')];
  try {
    const sourceStore = new SQLiteTokenStore({ filename: join(folder.path, 'source.db') });
    for (const token of tokens) await sourceStore.saveToken(token);
    await sourceStore.close();
    const from = `sqlite:${join(folder.path, 'source.db')}`;
    const to = `sqlite:${join(folder.path, 'target.db')}`;

    const dryRun = await runCli(['migrate', '--from', from, '--to', to, '--dry-run']);
    expect(dryRun.code).toBe(0);
    expect(dryRun.stdout).toMatch(/^dry run, nothing written: would copy 2, 0 already there, 0 conflicts$/m);
    expect(existsSync(join(folder.path, 'target.db'))).toBe(false);

    const copy = await runCli(['migrate', '--from', from, '--to', to]);
    expect(copy.code).toBe(0);
    expect(copy.stdout).toMatch(/^2 copied, 0 already there, 0 conflicts$/m);
    expect(byId(await readAll(new SQLiteTokenStore({ filename: join(folder.path, 'target.db') })))).toEqual(byId(tokens));

    const again = await runCli(['migrate', '--from', from, '--to', to]);
    expect(again.stdout).toMatch(/^0 copied, 2 already there, 0 conflicts$/m);
    const dryAgain = await runCli(['migrate', '--from', from, '--to', to, '--dry-run']);
    expect(dryAgain.stdout).toMatch(/^dry run, nothing written: would copy 0, 2 already there, 0 conflicts$/m);
    expectNoSecret([dryRun, copy, again, dryAgain].map((run) => run.stdout + run.stderr).join('\n'), secretsOf(tokens));
  } finally {
    folder.remove();
  }
});

test('a PostgreSQL dry run into a table that does not exist yet creates nothing', async () => {
  const folder = tempFolder();
  const table = randomName('crm_migrate');
  try {
    writeZohoFile(join(folder.path, 'sdk_tokens.txt'), [withId(sampleToken('ana@zylker.com:3'), '1')]);
    const result = await runCli([
      'migrate',
      '--from',
      `file:${join(folder.path, 'sdk_tokens.txt')}`,
      '--to',
      `${POSTGRES_URL}?table=${table}`,
      '--dry-run',
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/would copy 1, 0 already there/);
    const pg = createRequire(require.resolve('@crm/store-postgres'))('pg') as {
      Client: new (options: {
        connectionString: string;
      }) => { connect(): Promise<void>; query(sql: string, values: unknown[]): Promise<{ rows: unknown[] }>; end(): Promise<void> };
    };
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      expect((await client.query('SELECT 1 FROM information_schema.tables WHERE table_name = $1', [table])).rows).toEqual([]);
    } finally {
      await client.end();
    }
  } finally {
    folder.remove();
    await dropPostgresTable(table);
  }
});

test('conflicts are reported by id and left alone: the same user under another id, the same id with other values', async () => {
  const folder = tempFolder();
  try {
    const sameUser = sampleToken('ana@zylker.com:4');
    const sameId = sampleToken('bo@zylker.com:4');
    const fresh = sampleToken('cy@zylker.com:4');
    const source = new SQLiteTokenStore({ filename: join(folder.path, 'source.db') });
    for (const token of [sameUser, sameId, fresh]) await source.saveToken(token);
    await source.close();

    const targetUser = sampleToken('ana@zylker.com:4'); // another id, once saved
    const targetSameId = withId(sampleToken('bo@zylker.com:4'), sameId.id as string); // other secrets
    const target = new SQLiteTokenStore({ filename: join(folder.path, 'target.db') });
    for (const token of [targetUser, targetSameId]) await target.saveToken(token);
    const before = byId(await target.getTokens());
    await target.close();

    const result = await runCli([
      'migrate',
      '--from',
      `sqlite:${join(folder.path, 'source.db')}`,
      '--to',
      `sqlite:${join(folder.path, 'target.db')}`,
    ]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`conflict: token ${sameUser.id} has the user name of target token ${targetUser.id}; not overwritten`);
    expect(result.stdout).toMatch(
      new RegExp(`conflict: token ${sameId.id} is in the target with other values \\(.*accessToken.*\\); not overwritten`),
    );
    expect(result.stdout).toMatch(/^1 copied, 0 already there, 2 conflicts$/m);
    const after = await readAll(new SQLiteTokenStore({ filename: join(folder.path, 'target.db') }));
    expect(byId(after)).toEqual([...before, fieldsOf(fresh)].sort((a, b) => String(a.id).localeCompare(String(b.id))));
    expectNoSecret(result.stdout + result.stderr, secretsOf([sameUser, sameId, fresh, targetUser, targetSameId]));
  } finally {
    folder.remove();
  }
});

test('usage errors exit 2 and change nothing: a missing option, a source file that does not exist, one store twice', async () => {
  const folder = tempFolder();
  try {
    expect((await runCli(['migrate', '--from', 'memory:'])).code).toBe(2);
    const missing = await runCli([
      'migrate',
      '--from',
      `sqlite:${join(folder.path, 'none.db')}`,
      '--to',
      `sqlite:${join(folder.path, 'target.db')}`,
    ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('does not exist');
    expect(existsSync(join(folder.path, 'none.db'))).toBe(false);
    expect(existsSync(join(folder.path, 'target.db'))).toBe(false);
    expect((await runCli(['migrate', '--from', 'sqlite:a.db', '--to', 'sqlite:a.db'])).code).toBe(2);
  } finally {
    folder.remove();
  }
});

test('an unreachable target exits 3 without its password', async () => {
  const result = await runCli(['migrate', '--from', 'memory:', '--to', 'postgres://postgres:hunter2secret@127.0.0.1:1/test']);
  expect(result.code).toBe(3);
  expect(result.stdout + result.stderr).not.toContain('hunter2secret');
});

test('a dry run leaves the SQLite source and target as they were (journal mode and bytes)', async () => {
  const folder = tempFolder();
  try {
    const files = { source: join(folder.path, 'source.db'), target: join(folder.path, 'target.db') };
    for (const [name, filename] of Object.entries(files)) {
      const store = new SQLiteTokenStore({ filename, journalMode: 'DELETE' });
      await store.saveToken(sampleToken(`${name}@zylker.com`));
      await store.close();
    }
    const before = { source: readFileSync(files.source), target: readFileSync(files.target) };
    // Byte 18 of a SQLite file: 1 for a rollback journal, 2 once it is switched to WAL.
    expect([before.source[18], before.target[18]]).toEqual([1, 1]);
    const dryRun = await runCli(['migrate', '--from', `sqlite:${files.source}`, '--to', `sqlite:${files.target}`, '--dry-run']);
    expect(dryRun.stdout).toMatch(/^dry run, nothing written: would copy 1, 0 already there, 0 conflicts$/m);
    expect(readFileSync(files.source).equals(before.source)).toBe(true);
    expect(readFileSync(files.target).equals(before.target)).toBe(true);

    // The real run writes into the target only: the source stays as it was.
    const copy = await runCli(['migrate', '--from', `sqlite:${files.source}`, '--to', `sqlite:${files.target}`]);
    expect(copy.code).toBe(0);
    expect(readFileSync(files.source).equals(before.source)).toBe(true);
  } finally {
    folder.remove();
  }
});

/** A TCP proxy to Redis that cuts every connection and stops listening once clients have sent `limit` bytes. */
async function cuttingProxy(limit: number): Promise<{ url: string; close: () => void }> {
  const upstreamUrl = new URL(REDIS_URL);
  let seen = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(upstreamUrl.port || 6379), upstreamUrl.hostname);
    sockets.add(client);
    sockets.add(upstream);
    client.on('data', (chunk) => {
      seen += chunk.length;
      if (seen > limit) {
        for (const socket of sockets) socket.destroy();
        server.close();
        return;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => client.write(chunk));
    client.on('error', () => {});
    upstream.on('error', () => {});
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  const url = new URL(REDIS_URL);
  url.host = `127.0.0.1:${port}`;
  return {
    url: url.href.replace(/\/$/, ''),
    close: () => {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

test('a run cut off by an outage says how many were copied and exits 3; running it again finishes', async () => {
  const folder = tempFolder();
  const prefix = randomName('cli-cut');
  const tokens = Array.from({ length: 60 }, (_, index) => withId(sampleToken(`user${index}@zylker.com`), String(index + 1)));
  const proxy = await cuttingProxy(12_000);
  try {
    const file = join(folder.path, 'sdk_tokens.txt');
    writeZohoFile(file, tokens);
    const cut = await runCli(['migrate', '--from', `file:${file}`, '--to', `${proxy.url}?prefix=${prefix}&operationTimeoutMs=2000`], {
      timeoutMs: 60000,
    });
    expect(cut.code).toBe(3);
    expect(cut.stderr).toContain('crm-tokens: RedisTokenStore.saveToken:');
    const summary = /^(\d+) of 60 copied; the target is partly migrated; run the same command again to finish$/m.exec(cut.stdout);
    expect(summary).not.toBeNull();
    const copied = Number(summary?.[1]);
    const target = new RedisTokenStore({ url: REDIS_URL, prefix });
    expect((await target.getTokens()).length).toBe(copied);

    const finish = await runCli(['migrate', '--from', `file:${file}`, '--to', `${REDIS_URL}?prefix=${prefix}`]);
    expect(finish.code).toBe(0);
    expect(finish.stdout).toContain(`${60 - copied} copied, ${copied} already there, 0 conflicts`);
    expect((await target.getTokens()).length).toBe(60);
    await target.deleteTokens();
    await target.close();
    expectNoSecret(cut.stdout + cut.stderr + finish.stdout + finish.stderr, secretsOf(tokens));
  } finally {
    proxy.close();
    folder.remove();
  }
});
