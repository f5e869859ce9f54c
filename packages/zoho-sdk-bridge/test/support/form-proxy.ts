import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Zoho's SDKs post their token requests as multipart/form-data (the `form-data` package), which Zoho's
 * accounts server takes; the accounts emulator reads form-urlencoded bodies only. This loopback proxy
 * re-encodes multipart bodies as form-urlencoded and passes everything else through unchanged.
 */
export interface FormProxy {
  url: string;
  close(): Promise<void>;
}

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

export async function startFormProxy(target: string): Promise<FormProxy> {
  const server = createServer(async (request, response) => {
    try {
      const body = await readBody(request);
      const type = request.headers['content-type'] ?? '';
      const headers: Record<string, string> = {};
      if (request.headers.authorization) headers.authorization = request.headers.authorization;
      let forwarded: Buffer | URLSearchParams | undefined = body.length > 0 ? body : undefined;
      if (type.startsWith('multipart/form-data')) {
        const form = await new Response(body, { headers: { 'content-type': type } }).formData();
        const fields = new URLSearchParams();
        for (const [name, value] of form) fields.append(name, String(value));
        forwarded = fields;
      } else if (type) {
        headers['content-type'] = type;
      }
      const reply = await fetch(`${target}${request.url ?? '/'}`, { method: request.method, headers, body: forwarded });
      response.writeHead(reply.status, { 'content-type': reply.headers.get('content-type') ?? 'application/json' });
      response.end(Buffer.from(await reply.arrayBuffer()));
    } catch {
      response.writeHead(502).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
