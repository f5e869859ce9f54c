/**
 * Redis for the tests and benchmarks: the machine's server (REDIS_URL or 127.0.0.1:6379), else a throwaway
 * `redis-server` in a temporary folder on a free port; and a real three-master Redis Cluster on free ports.
 */
import { rmSync } from 'node:fs';
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

export type RedisService = Service;
export type ThrowawayRedis = ThrowawayServer;

export interface RedisCluster {
  /** `host:port` of each master. */
  nodes: { host: string; port: number }[];
  /** Ends all three servers and removes their folder. */
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';

function redisServerBinary(where: string): string {
  const binary = findBinary(['redis-server']);
  if (binary === null) throw notInstalledError('Redis', where, 'redis-server', 'redis-server', 'REDIS_URL');
  return binary;
}

function redisCliBinary(where: string): string {
  const binary = findBinary(['redis-cli']);
  if (binary === null) throw notInstalledError('Redis (cluster setup)', where, 'redis-cli', 'redis-tools', 'REDIS_CLUSTER_NODES');
  return binary;
}

type Daemon = ReturnType<typeof startDaemon>;
const running = new Set<Daemon>();
const folders = new Set<string>();
let exitHookInstalled = false;

/** Servers must not outlive a crashed test run or demo: kill what is left, and remove its folder, when this process exits. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of running) child.kill('SIGKILL');
    for (const dir of folders) rmSync(dir, { recursive: true, force: true });
  });
}

function track(daemon: Daemon): Daemon {
  installExitHook();
  running.add(daemon);
  daemon.once('exit', () => running.delete(daemon));
  return daemon;
}

function tempFolder(name: string): string {
  installExitHook();
  const dir = makeTempDir(name);
  folders.add(dir);
  return dir;
}

function removeFolder(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  folders.delete(dir);
}

async function startServer(binary: string, port: number, dir: string, extraArgs: string[] = []): Promise<Daemon> {
  const daemon = track(
    startDaemon(binary, [
      '--port',
      String(port),
      '--bind',
      HOST,
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
      ...extraArgs,
    ]),
  );
  try {
    await waitFor(`redis-server on port ${port}`, async () => {
      if (daemon.exitCode !== null) throw new Error(`redis-server exited: ${daemon.output()}`);
      return isPortOpen(port, HOST, 500);
    });
  } catch (error) {
    await stopDaemon(daemon, 2000);
    throw new Error(`could not start redis-server on port ${port}: ${(error as Error).message}\n${daemon.output()}`);
  }
  return daemon;
}

/** A `redis-server` of its own, on a free port, that a test may stop and start again (never the shared server). */
export async function startThrowawayRedis(): Promise<ThrowawayRedis> {
  const binary = redisServerBinary('a free local port');
  const port = await freePort();
  const dir = tempFolder('redis');
  let daemon: Daemon | null = await startServer(binary, port, dir);
  const stop = async () => {
    if (daemon !== null) await stopDaemon(daemon, 5000);
    daemon = null;
  };
  return {
    url: `redis://${HOST}:${port}`,
    port,
    stop,
    async start() {
      if (daemon === null) daemon = await startServer(binary, port, dir);
    },
    async destroy() {
      await stop();
      removeFolder(dir);
    },
  };
}

/** The Redis at REDIS_URL, else on 127.0.0.1:6379, else a throwaway one; fails naming the package to install. */
export async function ensureRedis(): Promise<RedisService> {
  const fromEnv = process.env.REDIS_URL;
  if (fromEnv !== undefined && fromEnv !== '') {
    const parsed = new URL(fromEnv);
    const port = Number(parsed.port || 6379);
    if (!(await isPortOpen(port, parsed.hostname || HOST, 2000))) {
      throw new Error(`REDIS_URL is set to ${parsed.host} but nothing answers there. Start that server or unset REDIS_URL.`);
    }
    return { url: fromEnv, stop: async () => {} };
  }
  if (await isPortOpen(6379, HOST)) return { url: `redis://${HOST}:6379`, stop: async () => {} };
  redisServerBinary(`${HOST}:6379`);
  const throwaway = await startThrowawayRedis();
  return { url: throwaway.url, stop: () => throwaway.destroy() };
}

/** Parses REDIS_CLUSTER_NODES (`host:port,host:port,...`), or null when unset. */
export function clusterNodesFromEnv(): { host: string; port: number }[] | null {
  const value = process.env.REDIS_CLUSTER_NODES;
  if (value === undefined || value === '') return null;
  return value.split(',').map((node) => {
    const [host, port] = node.trim().split(':');
    return { host: host || HOST, port: Number(port) };
  });
}

/**
 * A real Redis Cluster of three masters (no replicas) on free local ports in one temporary folder,
 * created with `redis-cli --cluster create` and returned once every node reports `cluster_state:ok`.
 */
export async function startRedisCluster(): Promise<RedisCluster> {
  const server = redisServerBinary('free local ports (cluster)');
  const cli = redisCliBinary('free local ports (cluster)');
  const dir = tempFolder('redis-cluster');
  const ports: number[] = [];
  while (ports.length < 3) {
    const port = await freePort();
    // The cluster bus listens on port + 10000, which must be free too.
    if (!ports.includes(port) && port + 10000 < 65536 && !(await isPortOpen(port + 10000, HOST, 200))) ports.push(port);
  }
  const daemons: Daemon[] = [];
  const stop = async () => {
    await Promise.all(daemons.map((daemon) => stopDaemon(daemon, 5000)));
    removeFolder(dir);
  };
  try {
    for (const port of ports) {
      daemons.push(
        await startServer(server, port, dir, ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`)]),
      );
    }
    runChecked(cli, ['--cluster', 'create', ...ports.map((port) => `${HOST}:${port}`), '--cluster-replicas', '0', '--cluster-yes']);
    for (const port of ports) {
      await waitFor(
        `cluster_state:ok on port ${port}`,
        async () => runChecked(cli, ['-h', HOST, '-p', String(port), 'cluster', 'info']).includes('cluster_state:ok'),
        30000,
        200,
      );
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { nodes: ports.map((port) => ({ host: HOST, port })), stop };
}
