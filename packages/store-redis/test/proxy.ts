/**
 * A loopback TCP proxy in front of Redis for the tests: on command it holds what clients send and forwards it
 * later, as a network that delays packets (or a server that stalls before it reads its socket) would; it can
 * also hold the server's replies. Connections stay open while bytes are held, as over TCP.
 */
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';

export interface TestProxy {
  /** `redis://` URL of the proxy. */
  url: string;
  /**
   * From now on, bytes from clients are held, not forwarded; with `from`, holding starts at the first chunk
   * that contains it (that chunk included), so the commands before it still go through.
   */
  hold(from?: string): void;
  /** Whether bytes are being held. */
  holding(): boolean;
  /** Forwards every held byte, in order, and stops holding. */
  release(): void;
  /** From now on, bytes from the server are held, not forwarded. */
  holdReplies(): void;
  /** Forwards the held replies, in order, and stops holding them. */
  releaseReplies(): void;
  /** How many times `text` occurs in what the server sent so far, over all connections. */
  replies(text: string): number;
  close(): Promise<void>;
}

export async function startProxy(target: URL): Promise<TestProxy> {
  let holdFrom: string | null = null;
  let holdingRequests = false;
  let holdingReplies = false;
  const heldRequests: Array<() => void> = [];
  const heldReplies: Array<() => void> = [];
  const sockets: Socket[] = [];
  const fromServer: Buffer[] = [];
  const server: Server = createServer((client) => {
    const upstream = tcpConnect(Number(target.port || 6379), target.hostname);
    sockets.push(client, upstream);
    let requests: Buffer[] | null = null;
    let replies: Buffer[] | null = null;
    client.on('data', (chunk: Buffer) => {
      if (holdFrom !== null && chunk.includes(holdFrom)) {
        holdFrom = null;
        holdingRequests = true;
      }
      if (requests === null && !holdingRequests) {
        upstream.write(chunk);
        return;
      }
      if (requests === null) {
        requests = [];
        heldRequests.push(() => {
          for (const held of requests ?? []) if (!upstream.destroyed) upstream.write(held);
          requests = null;
        });
      }
      requests.push(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      fromServer.push(chunk);
      if (replies === null && !holdingReplies) {
        if (!client.destroyed) client.write(chunk);
        return;
      }
      if (replies === null) {
        replies = [];
        heldReplies.push(() => {
          for (const held of replies ?? []) if (!client.destroyed) client.write(held);
          replies = null;
        });
      }
      replies.push(chunk);
    });
    client.on('close', () => upstream.end());
    upstream.on('close', () => client.destroy());
    client.on('error', () => {});
    upstream.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const proxied = new URL(target.href);
  proxied.hostname = '127.0.0.1';
  proxied.port = String((server.address() as { port: number }).port);
  return {
    url: proxied.href,
    hold: (from) => {
      if (from === undefined) holdingRequests = true;
      else holdFrom = from;
    },
    holding: () => holdingRequests,
    release: () => {
      holdFrom = null;
      holdingRequests = false;
      for (const forward of heldRequests.splice(0)) forward();
    },
    holdReplies: () => {
      holdingReplies = true;
    },
    releaseReplies: () => {
      holdingReplies = false;
      for (const forward of heldReplies.splice(0)) forward();
    },
    replies: (text) => Buffer.concat(fromServer).toString('latin1').split(text).length - 1,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
