/**
 * PostgreSQL for tests and benchmarks: the server at POSTGRES_URL, else one on 127.0.0.1:5432, else a
 * throwaway instance from the installed binaries (initdb + postgres) in a temporary folder on a free port.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chownSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  findBinary,
  freePort,
  isPortOpen,
  makeTempDir,
  notInstalledError,
  postgresBinDirs,
  type Service,
  type ThrowawayServer,
  waitFor,
} from './process.js';

/** The environment variable that points the tests at a running server. */
export const POSTGRES_URL_ENV = 'POSTGRES_URL';
/** The machine's usual server: trust auth, user postgres, database `test`. */
export const DEFAULT_POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/test';

export type PostgresService = Service;
export type ThrowawayPostgres = ThrowawayServer;

/** The uid and gid of the `postgres` system user, when this process runs as root (initdb refuses root). */
function postgresUser(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((entry) => entry.startsWith('postgres:'));
  if (line === undefined) {
    throw new Error(
      'Running as root, but there is no `postgres` system user to run a throwaway PostgreSQL as (initdb refuses root). ' +
        'Fix: `apt-get install -y postgresql` creates it.',
    );
  }
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

function binary(name: string): string {
  const found = findBinary([name], postgresBinDirs());
  if (found === null) throw notInstalledError('PostgreSQL', '127.0.0.1:5432', name, 'postgresql', POSTGRES_URL_ENV);
  return found;
}

function hostPort(url: string): { host: string; port: number } {
  const parsed = new URL(url);
  return { host: parsed.hostname || '127.0.0.1', port: Number(parsed.port || 5432) };
}

/**
 * Whether the server on 5432 takes the tests' login (user postgres, no password), creating the `test`
 * database when it is missing. A stock install asks for a password over TCP: then a throwaway server is
 * the way. Without psql there is no way to ask, and the server is taken as it is.
 */
function prepareDefaultServer(): boolean {
  const psql = findBinary(['psql'], postgresBinDirs());
  if (psql === null) return true;
  const ask = (database: string, sql: string) =>
    spawnSync(psql, ['-w', '-X', '-At', '-h', '127.0.0.1', '-p', '5432', '-U', 'postgres', '-d', database, '-c', sql], {
      encoding: 'utf8',
      env: { ...process.env, PGCONNECT_TIMEOUT: '5', PGPASSWORD: '' },
    });
  const found = ask('postgres', "SELECT 1 FROM pg_database WHERE datname = 'test'");
  if (found.status !== 0) return false;
  if (found.stdout.trim() !== '1') return ask('postgres', 'CREATE DATABASE test').status === 0;
  return true;
}

/** Finds a running server or starts a throwaway one. Works outside jest too. */
export async function ensurePostgres(): Promise<PostgresService> {
  const fromEnv = process.env[POSTGRES_URL_ENV];
  if (fromEnv !== undefined && fromEnv !== '') {
    const { host, port } = hostPort(fromEnv);
    if (!(await isPortOpen(port, host))) throw new Error(`${POSTGRES_URL_ENV} points at ${host}:${port}, but nothing answers there.`);
    return { url: fromEnv, stop: async () => {} };
  }
  if ((await isPortOpen(5432)) && prepareDefaultServer()) return { url: DEFAULT_POSTGRES_URL, stop: async () => {} };
  const throwaway = await startThrowawayPostgres();
  return { url: throwaway.url, stop: () => throwaway.destroy() };
}

/** A PostgreSQL server of its own in a temporary folder on a free port, run as `postgres` when we are root. */
export async function startThrowawayPostgres(): Promise<ThrowawayPostgres> {
  const initdb = binary('initdb');
  const postgres = binary('postgres');
  const isReady = binary('pg_isready');
  const user = postgresUser();
  const dir = makeTempDir('postgres');
  const dataDir = join(dir, 'data');
  if (user !== null) chownSync(dir, user.uid, user.gid);
  const asUser = user === null ? {} : { uid: user.uid, gid: user.gid };
  const env = { ...process.env, LC_ALL: 'C', LANG: 'C' };

  const init = spawnSync(initdb, ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync'], {
    encoding: 'utf8',
    env,
    cwd: dir,
    ...asUser,
  });
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (${init.status ?? init.signal}): ${init.stderr || init.stdout || init.error}`);
  }

  const port = await freePort();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let server: (ChildProcess & { output: () => string }) | null = null;
  // A test run or script that ends without destroy() must not leave a server or its folder behind.
  const killOnExit = () => {
    server?.kill('SIGQUIT');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', killOnExit);

  const start = async () => {
    if (server !== null) return;
    const child = spawn(
      postgres,
      ['-D', dataDir, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'max_connections=200'],
      { env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], ...asUser },
    );
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-8000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    // The server must not keep a script alive on its own: when the script ends, the exit hook stops it.
    child.unref();
    for (const stream of [child.stdout, child.stderr]) (stream as unknown as { unref?: () => void } | null)?.unref?.();
    server = Object.assign(child, { output: () => output });
    try {
      await waitFor(
        `PostgreSQL on port ${port}`,
        async () => {
          if (child.exitCode !== null) throw new Error(`postgres exited: ${output}`);
          return spawnSync(isReady, ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-q']).status === 0;
        },
        30000,
      );
    } catch (error) {
      await stop();
      throw new Error(`PostgreSQL did not start: ${(error as Error).message}\n${output}`);
    }
  };

  // SIGINT is PostgreSQL's fast shutdown: it ends open sessions instead of waiting for them (SIGTERM would).
  const stop = async () => {
    const child = server;
    server = null;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGINT');
    const timer = setTimeout(() => child.kill('SIGQUIT'), 15000);
    await exited;
    clearTimeout(timer);
  };

  const destroy = async () => {
    await stop();
    process.removeListener('exit', killOnExit);
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    await start();
  } catch (error) {
    process.removeListener('exit', killOnExit);
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return { url, port, stop, start, destroy };
}
