import { createServer, type Server, type Socket } from 'node:net';
import { OAuthToken, UserSignature } from '@crm/core';
import { Redis } from 'ioredis';
import { RedisTokenStore } from '../src/index.js';
import { TimeoutQueue } from '../src/timeouts.js';

// Timers on a loaded two-core machine fire late; a hung promise would not end at all.
const SLACK_MS = 1500;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once `condition` holds, checking every 5 ms; fails after 10 s. */
async function until(condition: () => boolean): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > 10000) throw new Error('condition not met within 10 s');
    await sleep(5);
  }
}

describe('TimeoutQueue', () => {
  test('expires waits in the order they began, once their time has passed, and never a settled one', async () => {
    // Wide gaps: on a loaded machine a timer may fire hundreds of milliseconds late.
    const queue = new TimeoutQueue(1000);
    const expired: string[] = [];
    const first = queue.add(() => expired.push('first'));
    const second = queue.add(() => expired.push('second'));
    queue.add(() => expired.push('third'));
    queue.settle(second);
    await sleep(1000);
    const late = queue.add(() => expired.push('late'));
    await until(() => expired.length > 0);
    // `late` began 1000 ms after the others, so it is still waiting when they end.
    expect(expired).toEqual(['first', 'third']);
    queue.settle(first); // after expiry: nothing happens
    await until(() => expired.length > 2);
    expect(expired).toEqual(['first', 'third', 'late']);
    queue.settle(late);
    // The queue is empty; a new wait arms the timer again.
    queue.add(() => expired.push('again'));
    await until(() => expired.length > 3);
    expect(expired).toEqual(['first', 'third', 'late', 'again']);
  });

  test('settled waits in the middle of the queue are skipped when the head expires', async () => {
    const queue = new TimeoutQueue(30);
    const expired: number[] = [];
    const waiters = Array.from({ length: 100 }, (_, i) => queue.add(() => expired.push(i)));
    for (const [i, waiter] of waiters.entries()) if (i % 3 !== 0) queue.settle(waiter);
    await until(() => expired.length >= 34);
    await sleep(50);
    expect(expired).toEqual(Array.from({ length: 34 }, (_, i) => i * 3));
  });
});

/**
 * A server that answers what ioredis sends on connecting (CLIENT SETINFO, then the INFO of its ready check)
 * and then never answers again: connected, but silent.
 */
async function silentServer(): Promise<{ port: number; server: Server; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let silent = false;
    socket.on('data', (data) => {
      // Each command is an array of bulk strings; its name is the first of them.
      const names = [...data.toString('latin1').matchAll(/\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n/g)].map((match) => match[1]?.toUpperCase());
      for (const name of names) {
        if (silent) return;
        if (name === 'INFO') {
          const info = '# Server\r\nredis_version:7.0.0\r\nloading:0\r\n';
          socket.write(`$${Buffer.byteLength(info)}\r\n${info}\r\n`);
          silent = true;
        } else {
          socket.write('+OK\r\n');
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as { port: number }).port, server, sockets };
}

test('connected to a server that stops answering, every operation is BACKEND_UNAVAILABLE within operationTimeoutMs', async () => {
  const { port, server, sockets } = await silentServer();
  // Your own client with ioredis's defaults: no command timeout of its own, so only the store bounds the wait.
  const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
  client.on('error', () => {});
  const store = new RedisTokenStore({ client, operationTimeoutMs: 300 });
  try {
    await until(() => client.status === 'ready');
    const operations = [
      () => store.findToken(new OAuthToken({ userSignature: new UserSignature('silent@example.com:1') })),
      () => store.saveToken(new OAuthToken({ userSignature: new UserSignature('silent@example.com:1'), accessToken: 'a' })),
      () => store.findTokenById('someid'),
    ];
    // Concurrent and one after another: each gets its own bound.
    const started = Date.now();
    const outcomes = await Promise.all(
      operations.map((operation) =>
        operation().then(
          () => null,
          (error: unknown) => error,
        ),
      ),
    );
    const elapsed = Date.now() - started;
    for (const error of outcomes) expect(error).toMatchObject({ code: 'BACKEND_UNAVAILABLE', message: expect.stringMatching(/300 ms/) });
    expect(elapsed).toBeGreaterThanOrEqual(295);
    expect(elapsed).toBeLessThan(300 + SLACK_MS);
    for (const operation of operations) {
      const begun = Date.now();
      await expect(operation()).rejects.toMatchObject({ code: 'BACKEND_UNAVAILABLE' });
      expect(Date.now() - begun).toBeGreaterThanOrEqual(295);
      expect(Date.now() - begun).toBeLessThan(300 + SLACK_MS);
    }
  } finally {
    await store.close();
    client.disconnect();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
});
