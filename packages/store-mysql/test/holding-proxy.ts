import { connect, createServer, type Server, type Socket } from 'node:net';

interface Link {
  client: Socket;
  upstream: Socket;
  /** Bytes from the client not yet forwarded: the proxy is holding them. */
  held: Buffer[] | null;
}

/**
 * A loopback TCP proxy between a client and a server that, when asked, holds the client's bytes (as a stalled
 * network would) and forwards them later, even after the client has given up and closed its socket: the
 * server then reads them as if they had been late on the wire.
 */
export class HoldingProxy {
  private readonly links = new Set<Link>();
  private holdWhen: ((chunk: Buffer) => boolean) | null = null;
  /** Bytes forwarded after a hold. */
  forwardedLate = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetHost: string, targetPort: number): Promise<HoldingProxy> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    const proxy = new HoldingProxy(server, address.port);
    server.on('connection', (client) => proxy.link(client, targetHost, targetPort));
    return proxy;
  }

  /** From the next client chunk that `when` accepts (default: any), hold that connection's bytes until `release()`. */
  hold(when: (chunk: Buffer) => boolean = () => true): void {
    this.holdWhen = when;
  }

  /** Forwards every held byte to the server, then ends those server connections whose client has gone. */
  release(): void {
    this.holdWhen = null;
    for (const link of this.links) {
      if (link.held === null) continue;
      const bytes = Buffer.concat(link.held);
      link.held = null;
      this.forwardedLate += bytes.length;
      link.upstream.write(bytes);
      if (link.client.destroyed) link.upstream.end();
    }
  }

  async close(): Promise<void> {
    for (const link of this.links) {
      link.client.destroy();
      link.upstream.destroy();
    }
    await new Promise((resolve) => this.server.close(resolve));
  }

  private link(client: Socket, host: string, port: number): void {
    const upstream = connect(port, host);
    const link: Link = { client, upstream, held: null };
    this.links.add(link);
    client.on('data', (chunk: Buffer) => {
      if (link.held === null && this.holdWhen?.(chunk)) link.held = [];
      if (link.held !== null) link.held.push(chunk);
      else upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!client.destroyed) client.write(chunk);
    });
    // A client that leaves while its bytes are held keeps the server connection open until they are forwarded.
    client.on('close', () => {
      if (link.held === null) upstream.end();
    });
    upstream.on('close', () => {
      client.destroy();
      this.links.delete(link);
    });
    client.on('error', () => {});
    upstream.on('error', () => {});
  }
}
