/** Running the built `crm-tokens` as a child process, and the stores the tests use. */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { OAuthToken, UserSignature } from '@crm/core';

export const CLI = resolve(__dirname, '../bin/crm-tokens.js');
export const POSTGRES_URL = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

if (!existsSync(resolve(__dirname, '../dist/cli.js'))) {
  throw new Error('apps/cli is not built: run `npx tsup` in apps/cli first');
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `crm-tokens args` with stdin a pipe (not a terminal) that is closed at once, or given `input`. */
export function runCli(
  args: string[],
  options: { cwd?: string; env?: Record<string, string | undefined>; input?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  const env: Record<string, string | undefined> = { ...process.env, CRM_TOKEN_STORE: undefined, ...options.env };
  for (const name of Object.keys(env)) if (env[name] === undefined) delete env[name];
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd ?? tmpdir(), env, stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`crm-tokens ${args.join(' ')} did not end within ${options.timeoutMs ?? 45000} ms\n${stdout}\n${stderr}`));
    }, options.timeoutMs ?? 45000);
    child.on('error', fail);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

export function tempFolder(): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), 'crm-cli-'));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export function randomName(prefix: string): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}

/** A token with every secret long enough that a redacted one shows only its last four characters. */
export function sampleToken(user: string, options: { expiryTime?: number | null } = {}): OAuthToken {
  const secret = (kind: string) => `1000.${kind}${randomBytes(16).toString('hex')}`;
  return new OAuthToken({
    userSignature: new UserSignature(user),
    clientId: `1000.CLIENT${randomBytes(4).toString('hex').toUpperCase()}`,
    clientSecret: secret('cs'),
    refreshToken: secret('rt'),
    accessToken: secret('at'),
    grantToken: secret('gt'),
    expiryTime: options.expiryTime === undefined ? Date.now() + 3_600_000 : options.expiryTime,
    redirectUrl: 'https://app.zylker.example/cb',
    apiDomain: 'https://www.zohoapis.com',
  });
}

/** A token nothing can use any more: no refresh or grant token, its access token expired an hour ago. */
export function unusableToken(user: string): OAuthToken {
  const token = sampleToken(user, { expiryTime: Date.now() - 3_600_000 });
  return new OAuthToken({ ...token.toFields(), userSignature: token.userSignature, refreshToken: null, grantToken: null });
}

/** Every secret of these tokens, none null. */
export function secretsOf(tokens: OAuthToken[]): string[] {
  return tokens.flatMap((token) =>
    [token.clientSecret, token.refreshToken, token.accessToken, token.grantToken].filter((value): value is string => value !== null),
  );
}

/** Fails, listing them, when `text` holds any of `secrets` (test values only). */
export function expectNoSecret(text: string, secrets: string[]): void {
  const leaked = secrets.filter((secret) => text.includes(secret));
  expect(leaked).toEqual([]);
}

/** Drops a test table through the `pg` driver the PostgreSQL store depends on. */
export async function dropPostgresTable(table: string): Promise<void> {
  const storeRequire = createRequire(require.resolve('@crm/store-postgres'));
  const { Client } = storeRequire('pg') as {
    Client: new (config: {
      connectionString: string;
    }) => { connect(): Promise<void>; query(sql: string): Promise<unknown>; end(): Promise<void> };
  };
  const client = new Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    await client.query(`DROP TABLE IF EXISTS "${table}"`);
  } finally {
    await client.end();
  }
}

/** `script` (util-linux) runs a command on a pseudo-terminal, so stdin is a terminal for it. */
export const HAS_SCRIPT = spawnSync('script', ['--version'], { stdio: 'ignore' }).status === 0;

/** Runs `crm-tokens args` on a pseudo-terminal and types `answer` once `prompt` shows (after `beforeAnswer`, if given). */
export function runOnTerminal(
  args: string[],
  prompt: string,
  answer: string,
  beforeAnswer: () => Promise<void> = async () => {},
): Promise<CliResult> {
  const quote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;
  const command = [process.execPath, CLI, ...args].map(quote).join(' ');
  return new Promise((done, fail) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], { cwd: tmpdir(), stdio: 'pipe' });
    let stdout = '';
    let answered = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`crm-tokens ${args.join(' ')} on a terminal did not end\n${stdout}`));
    }, 30000);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      if (!answered && stdout.includes(prompt)) {
        answered = true;
        beforeAnswer().then(
          () => child.stdin.write(answer),
          (error: unknown) => {
            child.kill('SIGKILL');
            fail(error);
          },
        );
      }
    });
    child.on('error', fail);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr: '' });
    });
  });
}
