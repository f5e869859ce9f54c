// The HTTP face of the emulator: routes, form bodies, JSON replies. Listens on 127.0.0.1 only.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Accounts, type EmulatorCounts, type Reply, type User } from './accounts.js';
import { ConsentPages } from './consent.js';

export interface AccountsEmulatorOptions {
  /** Port on 127.0.0.1; 0 (the default) picks a free one. */
  port?: number;
  /** Current time in epoch milliseconds. Without it the emulator uses `Date.now()` plus whatever `advance()` added. */
  clock?: () => number;
  /** How long an access token lives; Zoho's is one hour. */
  accessTokenLifetimeMs?: number;
  /** The `api_domain` in token replies; defaults to the emulator's own URL, which also serves `GET /crm/v8/users`. */
  apiDomain?: string;
  /** Reply in the older shape: `expires_in` in milliseconds plus `expires_in_sec` in seconds. */
  expiresInMilliseconds?: boolean;
  /** HTTP status of the throttled reply (`Access Denied`); 400 by default. */
  throttleStatus?: number;
  /** The email the consent page proposes (the user may type another); default `user@zylker.com`. */
  defaultUserEmail?: string;
  /** Zoho's `location` sent back with a grant code (`us`, `eu`, `in`, ...); default `us`. */
  location?: string;
  /** Called with one line per request (method, path without query, status). Nothing is logged without it. */
  log?: (line: string) => void;
}

export interface AccountsEmulator {
  /** `http://127.0.0.1:<port>`, the accounts base URL to give a client. */
  readonly url: string;
  readonly port: number;
  /** The `api_domain` the emulator hands out. */
  readonly apiDomain: string;
  /**
   * Registers an OAuth client; ids and secrets are generated unless given. The authorisation page redirects
   * only to `redirectUri` and the `redirectUris` given.
   */
  registerClient(input: { clientId?: string; clientSecret?: string; redirectUri: string; redirectUris?: string[] }): {
    clientId: string;
    clientSecret: string;
  };
  /**
   * What Zoho's consent screen would hand the redirect URI: a grant code, single use, valid 3 minutes. With a
   * `codeChallenge` (PKCE, S256), its exchange must bring the matching `code_verifier`.
   */
  issueGrantCode(input: {
    clientId: string;
    userEmail: string;
    orgId?: string;
    redirectUri?: string;
    scope?: string;
    codeChallenge?: string;
  }): string;
  /** Moves the built-in clock forward; throws when a `clock` option was given (move that clock instead). */
  advance(ms: number): void;
  /** The emulator's current time in epoch milliseconds. */
  now(): number;
  /** What the emulator has seen so far (a copy). */
  counts(): EmulatorCounts;
  /** Stops listening and closes open connections; resolves once the port is free. */
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 64 * 1024;

const NOT_FOUND = {
  code: 'INVALID_URL_PATTERN',
  details: {},
  message: 'Please check if the URL trying to access is a correct one',
  status: 'error',
};

export async function startAccountsEmulator(options: AccountsEmulatorOptions = {}): Promise<AccountsEmulator> {
  let offsetMs = 0;
  const clock = options.clock ?? (() => Date.now() + offsetMs);
  let apiDomain = options.apiDomain ?? '';
  const accounts = new Accounts({
    clock,
    accessTokenLifetimeMs: options.accessTokenLifetimeMs ?? 3_600_000,
    get apiDomain() {
      return apiDomain;
    },
    expiresInMilliseconds: options.expiresInMilliseconds ?? false,
    throttleStatus: options.throttleStatus ?? 400,
  });

  let url = '';
  const consent = new ConsentPages(accounts, clock, {
    defaultUserEmail: options.defaultUserEmail ?? 'user@zylker.com',
    location: options.location ?? 'us',
    accountsUrl: () => url,
  });
  const server = createServer((request, response) => {
    void handle(accounts, consent, request)
      .catch((): Reply => ({ status: 500, body: { error: 'server_error' } }))
      .then((reply) => {
        try {
          send(response, reply);
        } catch {
          response.destroy(); // a socket gone mid-reply ends this request only
        }
        try {
          options.log?.(`${request.method} ${(request.url ?? '').split('?')[0]} ${reply.status}`);
        } catch {
          // A log function that throws must not take the emulator down.
        }
      });
  });
  // A client that resets its connection mid-request must not take the emulator down.
  server.on('clientError', (_error, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  url = `http://127.0.0.1:${port}`;
  if (apiDomain === '') apiDomain = url;
  let closing: Promise<void> | undefined;

  return {
    url,
    port,
    apiDomain,
    registerClient: (input) => {
      const { clientId, clientSecret } = accounts.registerClient(input);
      return { clientId, clientSecret };
    },
    issueGrantCode: (input) => accounts.issueGrantCode(input),
    advance(ms) {
      if (options.clock) throw new Error('advance() moves the built-in clock only; move the clock you passed instead');
      if (!Number.isFinite(ms) || ms < 0) throw new RangeError('advance() takes a non-negative number of milliseconds');
      offsetMs += ms;
    },
    now: clock,
    counts: () => ({ ...accounts.counts }),
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // Keep-alive connections (the platform fetch keeps them) would hold close() open.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

async function handle(accounts: Accounts, consent: ConsentPages, request: IncomingMessage): Promise<Reply> {
  const requestUrl = new URL(request.url ?? '/', 'http://127.0.0.1');
  const route = ROUTES.get(requestUrl.pathname.replace(/\/+$/, ''));
  if (!route) return { status: 404, body: NOT_FOUND };
  if (request.method !== route.method) {
    request.resume();
    return { status: 405, body: { error: 'method_not_allowed', allow: route.method } };
  }
  let fields: URLSearchParams;
  if (route.method === 'POST') {
    const body = await readBody(request);
    if (body === null) return { status: 413, body: { error: 'invalid_request', error_description: 'request body too large' } };
    // Zoho takes the fields in the query string or a form body (URL-encoded, or multipart as Zoho's SDKs send
    // it); body fields win.
    fields = new URLSearchParams(requestUrl.search);
    const bodyFields = await formFields(request.headers['content-type'] ?? '', body);
    if (bodyFields === null) return { status: 400, body: { error: 'invalid_request', error_description: 'the form body cannot be read' } };
    for (const [name, value] of bodyFields) fields.set(name, value);
  } else {
    fields = requestUrl.searchParams;
  }
  return route.handle(accounts, fields, request, consent);
}

interface Route {
  method: 'GET' | 'POST';
  handle(accounts: Accounts, fields: URLSearchParams, request: IncomingMessage, consent: ConsentPages): Reply;
}

const ROUTES = new Map<string, Route>([
  ['/oauth/v2/auth', { method: 'GET', handle: (_accounts, fields, request, consent) => consent.show(fields, request.headers.cookie) }],
  [
    '/oauth/v2/auth/consent',
    { method: 'POST', handle: (_accounts, fields, request, consent) => consent.answer(fields, request.headers.cookie) },
  ],
  ['/oauth/v2/token', { method: 'POST', handle: (accounts, fields) => accounts.token(fields) }],
  ['/oauth/v2/token/revoke', { method: 'POST', handle: (accounts, fields) => accounts.revoke(fields.get('token')) }],
  ['/crm/v8/users', { method: 'GET', handle: currentUser }],
  ['/crm/v8/org', { method: 'GET', handle: organization }],
]);

/** The user behind the request's `Authorization: Zoho-oauthtoken ...` header, or the 401 reply Zoho would send. */
function authenticate(accounts: Accounts, request: IncomingMessage): User | Reply {
  const match = /^Zoho-oauthtoken\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
  if (!match) {
    return { status: 401, body: { code: 'AUTHENTICATION_FAILURE', details: {}, message: 'Authentication failed', status: 'error' } };
  }
  const user = accounts.userOf(match[1]!);
  return user ?? { status: 401, body: { code: 'INVALID_OAUTHTOKEN', details: {}, message: 'invalid oauth token', status: 'error' } };
}

/** GET /crm/v8/org: the organization of the token's user (its `id` is the orgId of `issueGrantCode`). */
function organization(accounts: Accounts, _fields: URLSearchParams, request: IncomingMessage): Reply {
  const user = authenticate(accounts, request);
  if ('status' in user) return user;
  return { status: 200, body: { org: [{ id: user.orgId, zgid: user.orgId, company_name: 'Emulated Org', primary_email: user.email }] } };
}

function currentUser(accounts: Accounts, fields: URLSearchParams, request: IncomingMessage): Reply {
  const user = authenticate(accounts, request);
  if ('status' in user) return user;
  if (fields.get('type') !== 'CurrentUser') {
    return {
      status: 400,
      body: {
        code: 'INVALID_DATA',
        details: { param_name: 'type' },
        message: 'the emulator serves type=CurrentUser only',
        status: 'error',
      },
    };
  }
  const name = user.email.split('@')[0] ?? user.email;
  return {
    status: 200,
    body: {
      users: [
        {
          id: user.id,
          email: user.email,
          first_name: null,
          last_name: name,
          full_name: name,
          status: 'active',
          confirm: true,
          role: { name: 'CEO', id: `${user.orgId}0001` },
          profile: { name: 'Administrator', id: `${user.orgId}0002` },
          zuid: user.id,
        },
      ],
      info: { per_page: 200, count: 1, page: 1, more_records: false },
    },
  };
}

/** The fields of a form body: multipart/form-data (text fields only), else URL-encoded; null when unreadable. */
async function formFields(contentType: string, body: Buffer): Promise<URLSearchParams | null> {
  if (!/^multipart\/form-data\s*;/i.test(contentType)) return new URLSearchParams(body.toString('utf8'));
  try {
    const form = await new Response(body, { headers: { 'content-type': contentType } }).formData();
    const fields = new URLSearchParams();
    for (const [name, value] of form) if (typeof value === 'string') fields.set(name, value);
    return fields;
  } catch {
    return null;
  }
}

/** The body as bytes, or null when it is larger than MAX_BODY_BYTES. */
function readBody(request: IncomingMessage): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    request.on('end', () => resolve(size > MAX_BODY_BYTES ? null : Buffer.concat(chunks)));
    request.on('error', reject);
    request.on('close', () => {
      if (!request.complete) reject(new Error('the client hung up mid-body'));
    });
  });
}

function send(response: ServerResponse, reply: Reply): void {
  if (response.destroyed) return;
  const text = reply.html ?? JSON.stringify(reply.body);
  const headers: Record<string, string | number> = {
    ...reply.headers,
    'content-type': reply.html === undefined ? 'application/json;charset=UTF-8' : 'text/html;charset=UTF-8',
    'content-length': Buffer.byteLength(text),
  };
  if (reply.status === 405 && typeof reply.body.allow === 'string') headers.allow = reply.body.allow;
  response.writeHead(reply.status, headers).end(text);
}
