import { join } from 'node:path';
import type { OAuthToken, TokenStore } from '@crm/core';
import { PostgresTokenStore } from '@crm/store-postgres';
import { SQLiteTokenStore } from '@crm/store-sqlite';
import {
  dropPostgresTable,
  expectNoSecret,
  HAS_SCRIPT,
  POSTGRES_URL,
  randomName,
  runCli,
  runOnTerminal,
  sampleToken,
  secretsOf,
  tempFolder,
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

/** Three tokens: two valid, one expired an hour ago. */
async function seed(store: TokenStore): Promise<OAuthToken[]> {
  const tokens = [
    sampleToken('ana@zylker.com'),
    sampleToken('ben@zylker.com', { expiryTime: Date.now() - 3_600_000 }),
    sampleToken('chloe@zylker.com'),
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
        expect(row).toContain(token.userName === 'ben@zylker.com' ? 'expired' : 'valid');
      }
      expect(result.stdout).toMatch(/^3 tokens \(1 expired\) in /m);
      expectNoSecret(result.stdout + result.stderr, secretsOf(tokens));
    });

    test('list --json gives an array of tokens, secrets redacted; --reveal shows them', async () => {
      const redacted = await runCli(['list', '--json', '--store', url]);
      expect(redacted.code).toBe(0);
      const shown = JSON.parse(redacted.stdout) as Record<string, unknown>[];
      expect(shown).toHaveLength(3);
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

    test('list --expired shows only the expired token', async () => {
      const result = await runCli(['list', '--expired', '--json', '--store', url]);
      expect(result.code).toBe(0);
      expect((JSON.parse(result.stdout) as { userName: string }[]).map((entry) => entry.userName)).toEqual(['ben@zylker.com']);
      const table = await runCli(['list', '--expired', '--store', url]);
      expect(table.stdout).toContain('ben@zylker.com');
      expect(table.stdout).not.toContain('ana@zylker.com');
      expect(table.stdout).toMatch(/^1 expired token in /m);
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
      expect(await userNames(store)).toEqual(['ana@zylker.com', 'ben@zylker.com', 'chloe@zylker.com']);

      const result = await runCli(['rm', tokens[0]?.id as string, '--store', url]);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(`Deleted token ${tokens[0]?.id} (ana@zylker.com)`);
      expect(await userNames(store)).toEqual(['ben@zylker.com', 'chloe@zylker.com']);
    });

    test('purge refuses without --yes when stdin is not a terminal, and deletes nothing', async () => {
      const result = await runCli(['purge', '--store', url], { input: 'y\n' });
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('pass --yes');
      expect(await userNames(store)).toEqual(['ana@zylker.com', 'ben@zylker.com', 'chloe@zylker.com']);
    });

    // Needs `script` (util-linux) for a pseudo-terminal: without it the test fails, naming the package.
    test('purge on a terminal asks first: y deletes, anything else deletes nothing', async () => {
      if (!HAS_SCRIPT) throw new Error('this test needs `script` for a pseudo-terminal: apt-get install -y util-linux');
      const declined = await runOnTerminal(['purge', '--store', url], 'Delete 3 tokens? [y/N]', 'n\n');
      expect(declined.code).toBe(0);
      expect(declined.stdout).toContain('Nothing deleted.');
      expect(await userNames(store)).toEqual(['ana@zylker.com', 'ben@zylker.com', 'chloe@zylker.com']);

      const accepted = await runOnTerminal(['purge', '--expired', '--store', url], 'Delete 1 expired token? [y/N]', 'y\n');
      expect(accepted.code).toBe(0);
      expect(accepted.stdout).toContain('Deleted 1 expired token from');
      expect(await userNames(store)).toEqual(['ana@zylker.com', 'chloe@zylker.com']);
    });

    test('purge --expired --yes deletes the expired token, purge --yes all of them', async () => {
      const expired = await runCli(['purge', '--expired', '--yes', '--store', url]);
      expect(expired.code).toBe(0);
      expect(expired.stdout).toContain('Deleted 1 expired token from');
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
      expect(result.stdout).toContain('1 token (0 expired) in sqlite:./zohooauth.db.');
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
