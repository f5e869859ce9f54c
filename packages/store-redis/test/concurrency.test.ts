import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { type Cluster, Redis } from 'ioredis';
import { RedisTokenStore } from '../src/index.js';
import { newClusterClient, randomPrefix, redisClusterNodes, redisUrl, removePrefix } from './conformance-options.js';

const WORKER = join(__dirname, 'fixtures', 'save-worker.ts');

/** Runs the worker in a separate Node process (through tsx) and returns its summary. */
function runWorker(worker: number, prefix: string, target: string): Promise<{ saved: number; failures: string[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER, String(worker), prefix, target], {
      cwd: join(__dirname, '..'),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`worker ${worker} exited with ${code}: ${stderr}`));
      else resolve(JSON.parse(stdout.trim().split('\n').pop() as string));
    });
  });
}

async function fourProcesses(target: string, store: RedisTokenStore): Promise<void> {
  const results = await Promise.all([1, 2, 3, 4].map((worker) => runWorker(worker, store.prefix, target)));
  for (const result of results) {
    expect(result.failures).toEqual([]);
    expect(result.saved).toBe(300);
  }
  const tokens = await store.getTokens();
  expect(tokens).toHaveLength(1001);
  expect(new Set(tokens.map((token) => token.id)).size).toBe(1001);
  expect(new Set(tokens.map((token) => token.userName)).size).toBe(1001);
  expect(tokens.filter((token) => token.userName === 'shared@example.com:1')).toHaveLength(1);
  // The index agrees with the hashes: every user is found by name, with its own id.
  const byId = new Map(tokens.map((token) => [token.id, token]));
  for (const token of tokens.slice(0, 200)) {
    const found = await store.findTokenById(token.id as string);
    expect(found?.userName).toBe(byId.get(token.id)?.userName);
  }
}

describe('4 processes × (250 own users + 50 saves of one shared user)', () => {
  test('standalone Redis: exactly 1001 tokens with distinct ids', async () => {
    const url = await redisUrl();
    const store = new RedisTokenStore({ url, prefix: randomPrefix() });
    try {
      await fourProcesses(url, store);
    } finally {
      await store.close();
      const admin = new Redis(url);
      await removePrefix(admin, store.prefix);
      await admin.quit();
    }
  });

  test('Redis Cluster: exactly 1001 tokens with distinct ids', async () => {
    const nodes = await redisClusterNodes();
    const client: Cluster = await newClusterClient();
    const store = new RedisTokenStore({ client, prefix: randomPrefix() });
    try {
      await fourProcesses(nodes.map((node) => `${node.host}:${node.port}`).join(','), store);
    } finally {
      await removePrefix(client, store.prefix);
      await client.quit();
    }
  });
});
