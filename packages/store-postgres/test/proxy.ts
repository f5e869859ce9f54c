/**
 * A loopback TCP proxy in front of the server for the tests: it counts the ReadyForQuery messages the server
 * sends (one per round trip of the extended or simple query protocol) and, on command, holds what clients send
 * and forwards it later, as a network that delays packets (or a server that stalls before it reads its socket)
 * would. A client that closes while its bytes are held is closed towards the server only after they are
 * forwarded: the server reads what was sent, then the end of the connection, as over TCP.
 */
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';

export interface TestProxy {
  /** `target` with the proxy's host and port. */
  url: string;
  /** ReadyForQuery messages the server sent so far, over all connections. */
  roundTrips(): number;
  /** Messages of one type (`'C'`: CommandComplete, `'E'`: ErrorResponse, ...) the server sent so far. */
  received(type: string): number;
  /** From now on, bytes from clients are held, not forwarded. */
  hold(): void;
  /**
   * Forwards every held byte, in order, and stops holding. Resolves once the server has closed each connection
   * that had bytes held (meant for connections their client gave up): it has read and run all it was sent.
   */
  release(): Promise<void>;
  /** From now on, bytes from the server are held, not forwarded (they are counted when they arrive). */
  holdReplies(): void;
  /** Forwards the held replies, in order, and stops holding them. */
  releaseReplies(): void;
  close(): Promise<void>;
}

export async function startProxy(target: URL): Promise<TestProxy> {
  const counts = new Map<number, number>();
  let holding = false;
  let holdingReplies = false;
  const heldReplies: Array<() => void> = [];
  const sockets: Socket[] = [];
  /** Per connection with held bytes: forwards them, then resolves when that connection is over. */
  const heldConnections: Array<() => Promise<void>> = [];
  const server: Server = createServer((client) => {
    const upstream = tcpConnect(Number(target.port || 5432), target.hostname);
    sockets.push(client, upstream);
    const upstreamClosed = new Promise<void>((resolve) => upstream.on('close', () => resolve()));
    let held: Buffer[] | null = null;
    let clientGone = false;
    let pending = Buffer.alloc(0);
    let replies: Buffer[] | null = null;
    const forwardReplies = () => {
      for (const chunk of replies ?? []) if (!client.destroyed) client.write(chunk);
      replies = null;
    };
    upstream.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      // Every message from the server: a type byte and a length that counts itself.
      while (pending.length >= 5) {
        const length = pending.readUInt32BE(1);
        if (pending.length < 1 + length) break;
        const type = pending[0] as number;
        counts.set(type, (counts.get(type) ?? 0) + 1);
        pending = pending.subarray(1 + length);
      }
      if (holdingReplies || replies !== null) {
        if (replies === null) {
          replies = [];
          heldReplies.push(forwardReplies);
        }
        replies.push(chunk);
      } else if (!client.destroyed) client.write(chunk);
    });
    const forward = async () => {
      for (const chunk of held ?? []) upstream.write(chunk);
      held = null;
      if (clientGone) upstream.end(); // the server sees the end of the connection after the bytes, and closes it
      await upstreamClosed;
    };
    client.on('data', (chunk: Buffer) => {
      if (held === null && !holding) {
        upstream.write(chunk);
        return;
      }
      if (held === null) {
        held = [];
        heldConnections.push(forward);
      }
      held.push(chunk);
    });
    client.on('close', () => {
      clientGone = true;
      if (held === null) upstream.destroy();
    });
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
    roundTrips: () => counts.get(0x5a) ?? 0, // 'Z'
    received: (type) => counts.get(type.charCodeAt(0)) ?? 0,
    hold: () => {
      holding = true;
    },
    release: async () => {
      holding = false;
      await Promise.all(heldConnections.splice(0).map((forward) => forward()));
    },
    holdReplies: () => {
      holdingReplies = true;
    },
    releaseReplies: () => {
      holdingReplies = false;
      for (const forward of heldReplies.splice(0)) forward();
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
