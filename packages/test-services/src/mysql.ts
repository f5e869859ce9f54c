/**
 * MariaDB (or MySQL) for tests and benchmarks: the server at MYSQL_URL, else one on 127.0.0.1:3306, else a
 * throwaway instance from the installed binaries (mariadb-install-db + mariadbd) in a temporary folder on a
 * free port. The URL always names the database `test`; a throwaway server creates it at start.
 */
import { type ChildProcess, spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  findBinary,
  freePort,
  isPortOpen,
  makeTempDir,
  notInstalledError,
  runChecked,
  type Service,
  startDaemon,
  stopDaemon,
  type ThrowawayServer,
  waitFor,
} from './process.js';

/** The environment variable that points the tests at a running server. */
export const MYSQL_URL_ENV = 'MYSQL_URL';
/** The machine's usual server: root with an empty password, database `test`. */
export const DEFAULT_MYSQL_URL = 'mysql://root@127.0.0.1:3306/test';

export type MySQLService = Service;

export interface ThrowawayMySQL extends ThrowawayServer {
  /** The running server's process id (to pause it with SIGSTOP in a hang test), or null while stopped. */
  pid(): number | null;
}

function binary(names: string[]): string {
  const found = findBinary(names);
  if (found === null) throw notInstalledError('MariaDB', '127.0.0.1:3306', names[0] ?? 'mariadbd', 'mariadb-server', MYSQL_URL_ENV);
  return found;
}

function hostPort(url: string): { host: string; port: number } {
  const parsed = new URL(url);
  return { host: parsed.hostname || '127.0.0.1', port: Number(parsed.port || 3306) };
}

/**
 * Logs in over TCP with the command-line client and creates the URL's database if it is missing. A fresh
 * Debian MariaDB lets root in only through the unix socket, and may have no `test` database. Returns the
 * client's complaint, or null when all is well (or when no client is installed to ask).
 */
function prepareDatabase(url: string): string | null {
  const client = findBinary(['mariadb', 'mysql']);
  if (client === null) return null;
  const parsed = new URL(url);
  const database = decodeURIComponent(parsed.pathname.slice(1));
  if (!/^[A-Za-z0-9_$]+$/.test(database)) return `the database name in ${MYSQL_URL_ENV} must be letters, digits, _ or $`;
  const password = decodeURIComponent(parsed.password);
  const result = spawnSync(
    client,
    [
      '--no-defaults',
      '--protocol=TCP',
      `--host=${parsed.hostname || '127.0.0.1'}`,
      `--port=${parsed.port || 3306}`,
      `--user=${decodeURIComponent(parsed.username) || 'root'}`,
      ...(password === '' ? [] : [`--password=${password}`]),
      '-e',
      `CREATE DATABASE IF NOT EXISTS \`${database}\``,
    ],
    { encoding: 'utf8', timeout: 15000 },
  );
  return result.status === 0 ? null : (result.stderr || result.error?.message || `exit ${result.status}`).trim();
}

/** Finds a running server or starts a throwaway one. Works outside jest too. */
export async function ensureMySQL(): Promise<MySQLService> {
  const fromEnv = process.env[MYSQL_URL_ENV];
  if (fromEnv !== undefined && fromEnv !== '') {
    const { host, port } = hostPort(fromEnv);
    if (!(await isPortOpen(port, host))) throw new Error(`${MYSQL_URL_ENV} points at ${host}:${port}, but nothing answers there.`);
    const problem = prepareDatabase(fromEnv);
    if (problem !== null) throw new Error(`${MYSQL_URL_ENV} points at a server that refused the tests: ${problem}`);
    return { url: fromEnv, stop: async () => {} };
  }
  if (await isPortOpen(3306)) {
    const problem = prepareDatabase(DEFAULT_MYSQL_URL);
    if (problem === null) return { url: DEFAULT_MYSQL_URL, stop: async () => {} };
    process.stderr.write(`MariaDB on 127.0.0.1:3306 refused root without a password (${problem}); starting a throwaway server instead.\n`);
  }
  const throwaway = await startThrowawayMySQL();
  return { url: throwaway.url, stop: () => throwaway.destroy() };
}

/**
 * A MariaDB server of its own in a temporary folder on a free port. As root, mariadbd needs `--user=root`;
 * `--auth-root-authentication-method=normal` gives root an empty password over TCP, like the usual server.
 */
export async function startThrowawayMySQL(): Promise<ThrowawayMySQL> {
  const installDb = binary(['mariadb-install-db', 'mysql_install_db']);
  const server = binary(['mariadbd', 'mysqld']);
  const asRoot = process.getuid?.() === 0 ? ['--user=root'] : [];
  const dir = makeTempDir('mysql');
  const dataDir = join(dir, 'data');
  const initFile = join(dir, 'init.sql');
  writeFileSync(initFile, 'CREATE DATABASE IF NOT EXISTS test;\n');
  runChecked(installDb, ['--no-defaults', `--datadir=${dataDir}`, '--auth-root-authentication-method=normal', '--skip-test-db', ...asRoot]);
  const port = await freePort();
  const args = [
    '--no-defaults',
    `--datadir=${dataDir}`,
    `--port=${port}`,
    `--socket=${join(dir, 's.sock')}`,
    `--pid-file=${join(dir, 'mariadbd.pid')}`,
    '--bind-address=127.0.0.1',
    '--skip-name-resolve',
    '--innodb-buffer-pool-size=64M',
    `--init-file=${initFile}`,
    ...asRoot,
  ];
  let child: (ChildProcess & { output: () => string }) | null = null;
  // If the process exits without stop(), the server must not outlive it.
  const killOnExit = () => {
    child?.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  const start = async () => {
    const started = startDaemon(server, args);
    child = started;
    await waitFor(
      `MariaDB on 127.0.0.1:${port}`,
      async () => {
        if (started.exitCode !== null) throw new Error('exited');
        // The port opens before start-up ends; a SIGTERM before "ready" waits out the whole start-up.
        return started.output().includes('ready for connections') && (await isPortOpen(port));
      },
      60000,
    ).catch((error: Error) => {
      throw new Error(`the throwaway MariaDB did not start (${error.message}):\n${started.output()}`);
    });
  };
  const stop = async () => {
    if (child !== null) await stopDaemon(child, 20000);
    child = null;
  };
  await start();
  return {
    url: `mysql://root@127.0.0.1:${port}/test`,
    port,
    stop,
    start,
    pid: () => child?.pid ?? null,
    destroy: async () => {
      await stop();
      process.removeListener('exit', killOnExit);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
