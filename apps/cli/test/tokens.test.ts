import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { OAuthToken, TokenStore } from '@crm/core';
import { PostgresTokenStore } from '@crm/store-postgres';
import { SQLiteTokenStore } from '@crm/store-sqlite';
import { redisConnect } from '../src/conformance-url-options';
import {
  dropPostgresTable,
  expectNoSecret,
  HAS_SCRIPT,
  POSTGRES_URL,
  REDIS_URL,
  randomName,
  runCli,
  runOnTerminal,
  sampleToken,
  secretsOf,
  tempFolder,
  unusableToken,
} from './helpers';

const JSON_KEYS = [
  'id',
  'userName',
  'clientId',
  'clientSecret',
  'refreshToken',
  'accessToken',
  'grantToken',
  'expiryTime',
  'expired',
  'redirectUrl',
  'apiDomain',
];
const SECRET_KEYS = ['clientSecret', 'refreshToken', 'accessToken', 'grantToken'] as const;

/** Four tokens: two valid, one whose access token expired an hour ago (its refresh token works), one that cannot be used any more. */
async function seed(store: TokenStore): Promise<OAuthToken[]> {
  const tokens = [
    sampleToken('ana@zylker.com'),
    sampleToken('ben@zylker.com', { expiryTime: Date.now() - 3_600_000 }),
    sampleToken('chloe@zylker.com'),
    unusableToken('dan@zylker.com'),
  ];
  for (const token of tokens) await store.saveToken(token);
  return tokens;
}

async function userNames(store: TokenStore): Promise<(string | null)[]> {
  return (await store.getTokens()).map((token) => token.userName).sort();
}

/** The list/show/rm/purge cases, on a store the test opens at `url` through `open`. */
function describeTokenCommands(name: string, setup: () => Promise<{ url: string; open: () => TokenStore; cleanup: () => Promise<void> }>) {
  describe(`crm-tokens list, show, rm, purge on ${name}`, () => {
    let url: string;
    let store: TokenStore;
    let cleanup: () => Promise<void>;
    let tokens: OAuthToken[];

    beforeEach(async () => {
      const made = await setup();
      url = made.url;
      cleanup = made.cleanup;
      store = made.open();
      tokens = await seed(store);
    });
    afterEach(async () => {
      await store.close?.();
      await cleanup();
    });

    test('list prints a table, secrets redacted', async () => {
      const result = await runCli(['list', '--store', url]);
      expect(result.code).toBe(0);
      for (const token of tokens) {
        const row = result.stdout.split('\n').find((line) => line.includes(token.userName as string));
        expect(row).toContain(token.id);
        expect(row).toContain(`[redacted …${token.accessToken?.slice(-4)}]`);
        expect(row).toContain(['ben@zylker.com', 'dan@zylker.com'].includes(token.userName as string) ? 'expired' : 'valid');
      }
      expect(result.stdout).toMatch(/^4 tokens \(2 with an expired access token, 1 that cannot be used any more\) in /m);
      expectNoSecret(result.stdout + result.stderr, secretsOf(tokens));
    });

    test('list --json gives an array of tokens, secrets redacted; --reveal shows them', async () => {
      const redacted = await runCli(['list', '--json', '--store', url]);
      expect(redacted.code).toBe(0);
      const shown = JSON.parse(redacted.stdout) as Record<string, unknown>[];
      expect(shown).toHaveLength(4);
      for (const entry of shown) expect(Object.keys(entry)).toEqual(JSON_KEYS);
      const ben = shown.find((entry) => entry.userName === 'ben@zylker.com');
      const stored = tokens[1] as OAuthToken;
      expect(ben).toEqual({
        id: stored.id,
        userName: 'ben@zylker.com',
        clientId: stored.clientId,
        clientSecret: `[redacted …${stored.clientSecret?.slice(-4)}]`,
        refreshToken: `[redacted …${stored.refreshToken?.slice(-4)}]`,
        accessToken: `[redacted …${stored.accessToken?.slice(-4)}]`,
        grantToken: `[redacted …${stored.grantToken?.slice(-4)}]`,
        expiryTime: stored.expiryTime,
        expired: true,
        redirectUrl: stored.redirectUrl,
        apiDomain: stored.apiDomain,
      });
      expectNoSecret(redacted.stdout, secretsOf(tokens));

      const revealed = await runCli(['list', '--json', '--reveal', '--store', url]);
      expect(revealed.code).toBe(0);
      for (const entry of JSON.parse(revealed.stdout) as Record<string, unknown>[]) {
        const token = tokens.find((candidate) => candidate.userName === entry.userName) as OAuthToken;
        for (const key of SECRET_KEYS) expect(entry[key]).toBe(token[key]);
      }
    });

    test('list --expired shows only the token nothing can use; --access-expired every expired access token', async () => {
      const result = await runCli(['list', '--expired', '--json', '--store', url]);
      expect(result.code).toBe(0);
      expect((JSON.parse(result.stdout) as { userName: string }[]).map((entry) => entry.userName)).toEqual(['dan@zylker.com']);
      const table = await runCli(['list', '--expired', '--store', url]);
      expect(table.stdout).toContain('dan@zylker.com');
      expect(table.stdout).not.toContain('ben@zylker.com');
      expect(table.stdout).toMatch(/^1 expired token in /m);
      const access = await runCli(['list', '--access-expired', '--json', '--store', url]);
      expect(access.code).toBe(0);
      expect((JSON.parse(access.stdout) as { userName: string }[]).map((entry) => entry.userName)).toEqual([
        'ben@zylker.com',
        'dan@zylker.com',
      ]);
      const both = await runCli(['list', '--expired', '--access-expired', '--store', url]);
      expect(both.code).toBe(2);
    });

    test('show ID prints every field, secrets redacted unless --reveal; an unknown id exits 1', async () => {
      const token = tokens[0] as OAuthToken;
      const result = await runCli(['show', token.id as string, '--store', url]);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('ana@zylker.com');
      expect(result.stdout).toContain(token.clientId);
      expect(result.stdout).toContain(`[redacted …${token.clientSecret?.slice(-4)}]`);
      expectNoSecret(result.stdout, secretsOf(tokens));

      const revealed = await runCli(['show', token.id as string, '--json', '--reveal', '--store', url]);
      expect(revealed.code).toBe(0);
      const shown = JSON.parse(revealed.stdout) as Record<string, unknown>;
      expect(Object.keys(shown)).toEqual(JSON_KEYS);
      for (const key of SECRET_KEYS) expect(shown[key]).toBe(token[key]);

      const unknown = await runCli(['show', 'no-such-id', '--store', url]);
      expect(unknown.code).toBe(1);
      expect(unknown.stdout).toBe('');
      expect(unknown.stderr).toContain('no token with id "no-such-id"');
    });

    test('rm ID deletes that token only; an unknown id exits 1 and deletes nothing', async () => {
      const unknown = await runCli(['rm', 'no-such-id', '--store', url]);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain('no token with id "no-such-id"');
      expect(await userNames(store)).toEqual(['ana@zylker.com', 'ben@zylker.com', 'chloe@zylker.com', 'dan@zylker.com']);

      const result = await runCli(['rm', tokens[0]?.id as string, '--store', url]);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(`Deleted token ${tokens[0]?.id} (ana@zylker.com)`);
      expect(await userNames(store)).toEqual(['ben@zylker.com', 'chloe@zylker.com', 'dan@zylker.com']);
    });

    test('purge refuses without --yes when stdin is not a terminal, and deletes nothing', async () => {
      const result = await runCli(['purge', '--store', url], { input: 'y\n' });
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('pass --yes');
      expect(await userNames(store)).toEqual(['ana@zylker.com', 'ben@zylker.com', 'chloe@zylker.com', 'dan@zylker.com']);
    });

    // Needs `script` (util-linux) for a pseudo-terminal: without it the test fails, naming the package.
    test('purge on a terminal asks first: y deletes, anything else deletes nothing', async () => {
      if (!HAS_SCRIPT) throw new Error('this test needs `script` for a pseudo-terminal: apt-get install -y util-linux');
      const declined = await runOnTerminal(['purge', '--store', url], 'Delete 4 tokens? [y/N]', 'n\n');
      expect(declined.code).toBe(0);
      expect(declined.stdout).toContain('Nothing deleted.');
      expect(await userNames(store)).toEqual(['ana@zylker.com', 'ben@zylker.com', 'chloe@zylker.com', 'dan@zylker.com']);

      const accepted = await runOnTerminal(['purge', '--expired', '--store', url], 'Delete 1 expired token? [y/N]', 'y\n');
      expect(accepted.code).toBe(0);
      expect(accepted.stdout).toContain('Deleted 1 expired token from');
      expect(await userNames(store)).toEqual(['ana@zylker.com', 'ben@zylker.com', 'chloe@zylker.com']);
    });

    test('purge keeps a token refreshed while the prompt waited, and deletes the unchanged ones', async () => {
      if (!HAS_SCRIPT) throw new Error('this test needs `script` for a pseudo-terminal: apt-get install -y util-linux');
      const ben = tokens[1] as OAuthToken;
      const refreshed = await runOnTerminal(
        ['purge', '--access-expired', '--store', url],
        'Delete 2 tokens with an expired access token? [y/N]',
        'y\n',
        async () => {
          // What TokenManager does on a refresh: same id, a new access token and expiry.
          const update = ben.clone();
          update.accessToken = `1000.atNEW${ben.accessToken?.slice(-12)}`;
          update.expiryTime = Date.now() + 3_600_000;
          await store.saveToken(update);
        },
      );
      expect(refreshed.code).toBe(0);
      expect(refreshed.stdout).toContain('Deleted 1 token with an expired access token from');
      expect(refreshed.stdout).toContain(`Kept 1 token changed since it was counted (refreshed or saved meanwhile): ${ben.id}`);
      expect(await userNames(store)).toEqual(['ana@zylker.com', 'ben@zylker.com', 'chloe@zylker.com']);
      expect((await store.findTokenById(ben.id as string))?.expiryTime).toBeGreaterThan(Date.now());
    });

    test('purge --expired --yes deletes only the token nothing can use (a refreshable one stays), purge --yes all of them', async () => {
      const expired = await runCli(['purge', '--expired', '--yes', '--store', url]);
      expect(expired.code).toBe(0);
      expect(expired.stdout).toContain('Deleted 1 expired token from');
      expect(await userNames(store)).toEqual(['ana@zylker.com', 'ben@zylker.com', 'chloe@zylker.com']);

      const accessExpired = await runCli(['purge', '--access-expired', '--yes', '--store', url]);
      expect(accessExpired.code).toBe(0);
      expect(accessExpired.stdout).toContain('Deleted 1 token with an expired access token from');
      expect(await userNames(store)).toEqual(['ana@zylker.com', 'chloe@zylker.com']);

      const all = await runCli(['purge', '--yes', '--store', url]);
      expect(all.code).toBe(0);
      expect(all.stdout).toContain('Deleted 2 tokens from');
      expect(await userNames(store)).toEqual([]);

      const nothing = await runCli(['purge', '--yes', '--store', url]);
      expect(nothing.code).toBe(0);
      expect(nothing.stdout).toContain('nothing deleted');
    });
  });
}

describeTokenCommands('SQLite', async () => {
  const folder = tempFolder();
  const filename = join(folder.path, 'tokens.db');
  return {
    url: `sqlite:${filename}`,
    open: () => new SQLiteTokenStore({ filename }),
    cleanup: async () => folder.remove(),
  };
});

describeTokenCommands('PostgreSQL', async () => {
  const table = randomName('cli_tokens');
  return {
    url: `${POSTGRES_URL}?table=${table}`,
    open: () => new PostgresTokenStore({ url: POSTGRES_URL, table }),
    cleanup: () => dropPostgresTable(table),
  };
});

describe('crm-tokens store selection and failures', () => {
  test('CRM_TOKEN_STORE selects the store; --store wins over it', async () => {
    const folder = tempFolder();
    try {
      const filename = join(folder.path, 'env.db');
      const store = new SQLiteTokenStore({ filename });
      await store.saveToken(sampleToken('env@zylker.com'));
      await store.close();
      const fromEnv = await runCli(['list', '--json'], { env: { CRM_TOKEN_STORE: `sqlite:${filename}` } });
      expect(fromEnv.code).toBe(0);
      expect((JSON.parse(fromEnv.stdout) as { userName: string }[]).map((entry) => entry.userName)).toEqual(['env@zylker.com']);
      const overridden = await runCli(['list', '--json', '--store', 'memory:'], { env: { CRM_TOKEN_STORE: `sqlite:${filename}` } });
      expect(JSON.parse(overridden.stdout)).toEqual([]);
    } finally {
      folder.remove();
    }
  });

  test('without either, the SQLite file zohooauth.db in the current folder', async () => {
    const folder = tempFolder();
    try {
      const store = new SQLiteTokenStore({ filename: join(folder.path, 'zohooauth.db') });
      await store.saveToken(sampleToken('default@zylker.com'));
      await store.close();
      const result = await runCli(['list'], { cwd: folder.path });
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('default@zylker.com');
      expect(result.stdout).toContain('1 token (0 with an expired access token, 0 that cannot be used any more) in sqlite:./zohooauth.db.');
    } finally {
      folder.remove();
    }
  });

  test('a password in the store URL is never printed', async () => {
    const table = randomName('cli_password');
    // The test server trusts local connections, so any password is accepted and must still be hidden.
    const withPassword = new URL(POSTGRES_URL);
    withPassword.password = 'Sup3rS3cretPw';
    withPassword.searchParams.set('table', table);
    const url = withPassword.href;
    try {
      const store = new PostgresTokenStore({ url: POSTGRES_URL, table });
      await store.saveToken(sampleToken('pw@zylker.com'));
      await store.close();
      const empty = await runCli(['list', '--store', url]);
      expect(empty.code).toBe(0);
      expect(empty.stdout).toContain(':***@');
      const unknown = await runCli(['show', 'x', '--store', url]);
      expect(unknown.code).toBe(1);
      for (const result of [empty, unknown]) expect(result.stdout + result.stderr).not.toContain('Sup3rS3cretPw');
    } finally {
      await dropPostgresTable(table);
    }
  });

  test('a bad store URL is a usage error (exit 2); an unreachable server exits 3, without its password', async () => {
    const bad = await runCli(['list', '--store', 'nosuch://x']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('unknown scheme');
    const unreachable = await runCli(['list', '--store', 'postgres://postgres:Unr3achablePw@127.0.0.1:1/test']);
    expect(unreachable.code).toBe(3);
    expect(unreachable.stderr).toContain('crm-tokens:');
    expect(unreachable.stderr).not.toContain('Unr3achablePw');
  });

  test('every command has --help with examples', async () => {
    for (const command of ['list', 'show', 'rm', 'purge']) {
      const result = await runCli([command, '--help']);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(`Usage: crm-tokens ${command}`);
      expect(result.stdout).toContain('Examples:');
      expect(result.stdout).toContain('CRM_TOKEN_STORE');
    }
  });

  test('a missing id is a usage error', async () => {
    const result = await runCli(['show', '--store', 'memory:']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("missing required argument 'id'");
  });
});

/** Whether PostgreSQL has this table in the public schema. */
async function postgresHasTable(table: string): Promise<boolean> {
  const store = new PostgresTokenStore({ url: POSTGRES_URL, table, createSchema: false });
  try {
    await store.getTokens();
    return true;
  } catch {
    return false;
  } finally {
    await store.close();
  }
}

describe('crm-tokens list, show, rm, purge never create storage', () => {
  test('a table that is not there is an error (exit 3) naming it and how to create it; nothing is created', async () => {
    const table = randomName('cli_typo');
    const url = `${POSTGRES_URL}?table=${table}`;
    try {
      for (const args of [['list'], ['show', '1'], ['rm', '1'], ['purge', '--yes'], ['purge', '--expired', '--yes']]) {
        const result = await runCli([...args, '--store', url]);
        expect(result.code).toBe(3);
        expect(result.stdout).toBe('');
        expect(result.stderr).toContain(`no token table public.${table} in `);
        expect(result.stderr).toContain('crm-tokens demo --store');
      }
      expect(await postgresHasTable(table)).toBe(false);
    } finally {
      await dropPostgresTable(table);
    }
  });

  test('list in a folder without zohooauth.db says so (exit 3) and creates no file; a mistyped SQLite path neither', async () => {
    const folder = tempFolder();
    try {
      const fallback = await runCli(['list'], { cwd: folder.path });
      expect(fallback.code).toBe(3);
      expect(fallback.stderr).toContain('no SQLite file ./zohooauth.db (sqlite:./zohooauth.db)');
      const typo = await runCli(['show', '1', '--store', 'sqlite:./typo.db'], { cwd: folder.path });
      expect(typo.code).toBe(3);
      expect(typo.stderr).toContain('no SQLite file ./typo.db');
      const csv = await runCli(['list', '--store', 'file:./sdk_tokens.txt'], { cwd: folder.path });
      expect(csv.code).toBe(3);
      expect(csv.stderr).toContain('no token file ./sdk_tokens.txt');
      expect(readdirSync(folder.path)).toEqual([]);
    } finally {
      folder.remove();
    }
  });

  test('a SQLite file without the token table is an error, and gets no table', async () => {
    const folder = tempFolder();
    try {
      const filename = join(folder.path, 'tokens.db');
      new SQLiteTokenStore({ filename, table: 'other' }).close();
      const before = readFileSync(filename);
      const result = await runCli(['list', '--store', `sqlite:${filename}`]);
      expect(result.code).toBe(3);
      expect(result.stderr).toContain(`no token table oauthtoken in the SQLite file ${filename}`);
      expect(readFileSync(filename).equals(before)).toBe(true);
    } finally {
      folder.remove();
    }
  });

  test('a Redis prefix with no keys is an empty store (Redis keeps nothing for one), and reading it creates nothing', async () => {
    const prefix = randomName('cli-empty');
    const result = await runCli(['list', '--store', `${REDIS_URL}?prefix=${prefix}`]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('No tokens');
    const doctor = await runCli(['doctor', '--store', `${REDIS_URL}?prefix=${prefix}`]);
    expect(doctor.stdout).toContain(`no keys under the prefix ${prefix}: an empty store, or a mistyped prefix`);
    const client = await redisConnect(REDIS_URL);
    try {
      expect(await client.call('KEYS', `{${prefix}}*`)).toEqual([]);
    } finally {
      await client.quit();
    }
  });

  test('list and show read a SQLite file without changing it (its journal mode stays)', async () => {
    const folder = tempFolder();
    try {
      const filename = join(folder.path, 'tokens.db');
      const store = new SQLiteTokenStore({ filename, journalMode: 'DELETE' });
      const token = sampleToken('ro@zylker.com');
      await store.saveToken(token);
      await store.close();
      const before = readFileSync(filename);
      // Byte 18 of a SQLite file: 1 for a rollback journal, 2 once it is switched to WAL.
      expect(before[18]).toBe(1);
      expect((await runCli(['list', '--store', `sqlite:${filename}`])).code).toBe(0);
      expect((await runCli(['show', token.id as string, '--store', `sqlite:${filename}`])).code).toBe(0);
      expect(readFileSync(filename).equals(before)).toBe(true);
      expect(existsSync(`${filename}-wal`)).toBe(false);
    } finally {
      folder.remove();
    }
  });
});

describe("commander's usage errors", () => {
  const url = 'postgres://app:Sup3rSecret@db.internal:5432/crm';
  test.each([
    [[url], "unknown command 'postgres://app:***@db.internal:5432/crm'"],
    [['list', `--stor=${url}`], "unknown option '--stor=postgres://app:***@db.internal:5432/crm'"],
    [
      ['migrate', `--from=${url}`, '--to', 'memory:', '--too=redis://u:Sup3rSecret@127.0.0.1:6379'],
      "unknown option '--too=redis://***@127.0.0.1:6379'",
    ],
    [['doctor', '--sotre', url], "unknown option '--sotre'"],
    [['postgres://app:Sup3r Se"cret@db.internal/crm'], "unknown command 'postgres://app:***@db.internal/crm'"],
  ])('crm-tokens %j shows no password (exit 2)', async (args, message) => {
    const result = await runCli(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    expect(result.stdout + result.stderr).not.toContain('Sup3r');
  });
});
