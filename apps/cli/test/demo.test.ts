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

const USERS = ['ana@demo.zylker.example', 'ben@demo.zylker.example', 'chloe@demo.zylker.example'];

async function storedTokens(store: TokenStore): Promise<OAuthToken[]> {
  return (await store.getTokens()).sort((a, b) => (a.userName ?? '').localeCompare(b.userName ?? ''));
}

/** What every demo run prints, whatever the store. */
function expectDemoOutput(stdout: string, stored: OAuthToken[]): void {
  expect(stdout).toMatch(/^1\. Grant exchange/m);
  for (const user of USERS) expect(stdout).toMatch(new RegExp(`^ {3}${user}: saved as token \\S+, access token valid for 60 min$`, 'm'));
  expect(stdout).toContain('ana@demo.zylker.example: HTTP 200, user "ana"');
  expect(stdout).toContain('chloe@demo.zylker.example: HTTP 200, user "chloe"');
  expect(stdout).toContain('3. Time moved 61 minutes ahead: 3 of 3 stored access tokens have expired');
  for (const user of USERS) {
    expect(stdout).toContain(`${user}: 20 callers, 1 refresh at the accounts server, one access token for all`);
  }
  expect(stdout).toMatch(/ben@demo\.zylker\.example: token \S+ deleted from the store/);
  expect(stdout).toContain('its last access token now gets HTTP 401 from the API');
  // The final table: the two users left, by their stored ids, valid, secrets redacted.
  const table = stdout.slice(stdout.indexOf('6. Stored tokens'));
  expect(stored.map((token) => token.userName)).toEqual([USERS[0], USERS[2]]);
  for (const token of stored) {
    const row = table.split('\n').find((line) => line.includes(token.userName as string));
    expect(row).toContain(token.id);
    expect(row).toContain(`[redacted …${token.accessToken?.slice(-4)}]`);
    expect(row).toContain('valid');
  }
  expect(table).not.toContain(USERS[1]);
  expectNoSecret(stdout, secretsOf(stored));
}

describe('crm-tokens demo', () => {
  test('on the default SQLite file in the current folder, twice, leaving other tokens alone', async () => {
    const folder = tempFolder();
    try {
      const first = await runCli(['demo'], { cwd: folder.path });
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      expect(first.stdout).toMatch(/^Store: sqlite:\.\/zohooauth\.db$/m);
      expect(first.stdout).toMatch(/^Accounts server: the emulator at http:\/\/127\.0\.0\.1:\d+/m);

      let store = new SQLiteTokenStore({ filename: join(folder.path, 'zohooauth.db') });
      const afterFirst = await storedTokens(store);
      expectDemoOutput(first.stdout, afterFirst);
      // A token of someone else, which the next run must keep.
      const other = sampleToken('someone@zylker.com');
      await store.saveToken(other);
      await store.close();

      const second = await runCli(['demo'], { cwd: folder.path });
      expect(second.code).toBe(0);
      expect(second.stdout).toContain('Replaced 2 token(s) of the demo users left by an earlier run.');
      store = new SQLiteTokenStore({ filename: join(folder.path, 'zohooauth.db') });
      const afterSecond = await storedTokens(store);
      await store.close();
      const demoTokens = afterSecond.filter((token) => token.userName !== 'someone@zylker.com');
      expectDemoOutput(second.stdout, demoTokens);
      expect(afterSecond.find((token) => token.userName === 'someone@zylker.com')?.toFields()).toEqual(other.toFields());
      expect(demoTokens.map((token) => token.id)).not.toContain(afterFirst[0]?.id);
      expectNoSecret(second.stdout, secretsOf([other, ...afterFirst]));
    } finally {
      folder.remove();
    }
  });

  test('--store on PostgreSQL, in a table of its own', async () => {
    const table = randomName('cli_demo');
    const url = `${POSTGRES_URL}?table=${table}`;
    const result = await runCli(['demo', '--store', url]);
    const store = new PostgresTokenStore({ url: POSTGRES_URL, table });
    try {
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(`Store: ${url}`);
      expectDemoOutput(result.stdout, await storedTokens(store));
    } finally {
      await store.close();
      await dropPostgresTable(table);
    }
  });

  test('--store on Redis, under a key prefix of its own (from CRM_TOKEN_STORE)', async () => {
    const prefix = randomName('cli-demo');
    const url = `${REDIS_URL}?prefix=${prefix}`;
    const result = await runCli(['demo'], { env: { CRM_TOKEN_STORE: url } });
    const store = new RedisTokenStore({ url: REDIS_URL, prefix });
    try {
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(`Store: ${url}`);
      expectDemoOutput(result.stdout, await storedTokens(store));
    } finally {
      await store.deleteTokens();
      await store.close();
    }
  });

  test('--help explains the demo with examples', async () => {
    const result = await runCli(['demo', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Usage: crm-tokens demo [options]');
    expect(result.stdout).toContain('--store <url>');
    expect(result.stdout).toContain('Examples:');
  });
});
