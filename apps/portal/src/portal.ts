// The portal: "Login with Zoho", the signed-in user's CRM profile, the stored tokens (redacted), logout and
// disconnect, on any token store. Without Zoho credentials it starts the accounts emulator in-process and
// registers itself as a client there, so it runs with no configuration at all.
import { randomBytes } from 'node:crypto';
import { type AccountsEmulator, startAccountsEmulator } from '@crm/accounts-emulator';
import {
  authorizationUrl,
  createPkce,
  DATA_CENTERS,
  type DataCenter,
  OAuthError,
  OAuthToken,
  openTokenStore,
  randomState,
  redactUrl,
  TokenManager,
  type TokenStore,
  TokenStoreError,
  UserSignature,
} from '@crm/core';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import {
  CookieSigner,
  cookieHeader,
  LOGIN_COOKIE,
  LOGIN_LIFETIME_MS,
  loginCookieName,
  parseCookies,
  readPendingLogin,
  readSession,
  SESSION_COOKIE,
  SESSION_LIFETIME_MS,
  type Session,
  SessionTable,
  sameText,
  sessionCookieName,
} from './cookies.js';
import { errorPage, homePage, type PageContext, type Profile, profilePage, tokensPage } from './pages.js';

export const DEFAULT_STORE_URL = 'sqlite:./portal.db';
export const DEFAULT_SCOPE = 'ZohoCRM.users.READ';

/** A real accounts server (Zoho): the client registered in Zoho's API console. */
export interface ZohoClient {
  clientId: string;
  clientSecret: string;
  /** Zoho's data center of the accounts (default `US`), or `accountsUrl` for another accounts server. */
  dataCenter?: DataCenter;
  accountsUrl?: string;
  /** The redirect URI registered for the client; the portal serves its path and must be reached at its origin. */
  redirectUrl: string;
}

export interface PortalOptions {
  /** A store URL as `crm-tokens` takes it; default `sqlite:./portal.db`. */
  storeUrl?: string;
  /** Where to listen; default 127.0.0.1, port 3000 (0 picks a free port). */
  host?: string;
  port?: number;
  /** Zoho's accounts server; without it the portal starts the accounts emulator on loopback. */
  zoho?: ZohoClient | null;
  /** Scopes to ask for; default `ZohoCRM.users.READ` (the profile page needs it). */
  scope?: string;
  /** The key of the session cookies' HMAC (32 characters or more); default a random one per start. */
  sessionSecret?: string | null;
  /** Send a PKCE (S256) challenge with each sign-in; default true. */
  pkce?: boolean;
  /** For the emulator: the email its consent page proposes; default `ana@zylker.com`. */
  emulatorUser?: string;
  /** Users (emails) whose tokens page lists every stored token and names the store; others see their own only. */
  admins?: string[];
  /** Where to report a best-effort step that failed (a replaced refresh token not revoked); default stderr. */
  log?: (line: string) => void;
}

export interface Portal {
  /** Where to open the portal in a browser. */
  readonly url: string;
  readonly redirectUrl: string;
  /** The in-process accounts emulator, or null when the portal talks to Zoho. */
  readonly emulator: AccountsEmulator | null;
  readonly store: TokenStore;
  readonly manager: TokenManager;
  /** The store URL as it may be shown (password replaced). */
  readonly storeLabel: string;
  /** Whether the session secret was generated for this start (sessions end when it stops). */
  readonly randomSessionSecret: boolean;
  close(): Promise<void>;
}

export class PortalConfigError extends Error {
  override name = 'PortalConfigError';
}

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  // The callback's address holds the grant code: no Referer leaves the portal. (Not no-referrer: with it,
  // browsers send `Origin: null` on the portal's own form posts, which the origin check must refuse.)
  'referrer-policy': 'same-origin',
  'cache-control': 'no-store',
};

/** Loads store packages from the portal's own dependencies. */
const load = (name: string): Promise<unknown> => import(name);

export async function startPortal(options: PortalOptions = {}): Promise<Portal> {
  const storeUrl = options.storeUrl ?? DEFAULT_STORE_URL;
  const scope = options.scope ?? DEFAULT_SCOPE;
  const pkce = options.pkce ?? true;
  if (options.sessionSecret != null && options.sessionSecret.length < 32) {
    throw new PortalConfigError('the session secret must be at least 32 characters long (openssl rand -base64 32 makes one)');
  }
  const randomSessionSecret = options.sessionSecret == null;
  const signer = new CookieSigner(options.sessionSecret ?? randomBytes(32).toString('base64url'));
  const zoho = options.zoho ?? null;
  let callbackUrl: URL | null = null;
  if (zoho !== null) {
    if (!zoho.clientId || !zoho.clientSecret) throw new PortalConfigError('a Zoho client needs both its client id and client secret');
    try {
      callbackUrl = new URL(zoho.redirectUrl);
    } catch {
      throw new PortalConfigError('the redirect URL must be an absolute http(s) URL, as registered in the API console');
    }
    if (callbackUrl.protocol !== 'http:' && callbackUrl.protocol !== 'https:') {
      throw new PortalConfigError('the redirect URL must be an http(s) URL');
    }
  }

  const store = await openTokenStore(storeUrl, { load });
  let emulator: AccountsEmulator | null = null;
  let app: FastifyInstance | null = null;
  try {
    if (zoho === null) emulator = await startAccountsEmulator({ defaultUserEmail: options.emulatorUser ?? 'ana@zylker.com' });
    app = Fastify({ logger: false, bodyLimit: 16 * 1024 });
    // Routes go in before listening; what depends on the port (the emulator's client, the origin) is filled in
    // right after, and requests arriving before that get 503.
    const callbackPath = callbackUrl?.pathname ?? '/oauth/callback';
    const context = {
      signer,
      store,
      scope,
      pkce,
      callbackPath,
      secure: callbackUrl?.protocol === 'https:',
      storeLabel: redactUrl(storeUrl),
      admins: new Set((options.admins ?? []).map((email) => email.trim().toLowerCase()).filter((email) => email !== '')),
      sessions: new SessionTable(),
      sessionCookie: sessionCookieName(callbackUrl?.protocol === 'https:'),
      ready: false,
    } as Context;
    routes(app, context);
    await app.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 3000 });
    const address = app.server.address();
    const port = typeof address === 'object' && address !== null ? address.port : (options.port ?? 3000);
    if (emulator !== null) callbackUrl = new URL(`http://127.0.0.1:${port}${callbackPath}`);
    const callback = callbackUrl as URL;
    const redirectUrl = callback.toString();
    let clientId: string;
    let clientSecret: string;
    if (emulator !== null) {
      ({ clientId, clientSecret } = emulator.registerClient({ redirectUri: redirectUrl }));
    } else {
      ({ clientId, clientSecret } = zoho as ZohoClient);
    }
    const log = options.log ?? ((line: string) => console.error(line));
    const manager = new TokenManager({
      store,
      clientId,
      clientSecret,
      redirectUrl,
      // The warning's message names the step and Zoho's error code, never a token.
      onWarning: (warning) => log(`portal: ${warning.operation}: ${warning.message}`),
      ...(emulator !== null
        ? // The portal shares the emulator's clock, so moving it moves what "expired" means for both.
          { accountsUrl: emulator.url, clock: emulator.now }
        : zoho?.accountsUrl !== undefined
          ? { accountsUrl: zoho.accountsUrl }
          : { dataCenter: zoho?.dataCenter ?? 'US' }),
    });
    Object.assign(context, {
      manager,
      clientId,
      origin: callback.origin,
      host: callback.host,
      redirectUrl,
      accountsLabel: emulator !== null ? `the Zoho accounts emulator at ${emulator.url}` : `Zoho accounts at ${manager.accountsUrl}`,
      now: emulator?.now ?? Date.now,
      ready: true,
    });
    const storeLabel = context.storeLabel;
    const origin = callback.origin;
    const started = app;
    const startedEmulator = emulator;
    let closing: Promise<void> | undefined;
    return {
      url: `${origin}/`,
      redirectUrl,
      emulator,
      store,
      manager,
      storeLabel,
      randomSessionSecret,
      close() {
        closing ??= (async () => {
          await started.close();
          await startedEmulator?.close();
          await store.close?.();
        })();
        return closing;
      },
    };
  } catch (error) {
    await app?.close().catch(() => undefined);
    await emulator?.close().catch(() => undefined);
    await store.close?.().catch(() => undefined);
    throw error;
  }
}

interface Context {
  /** False until the portal listens and its client is known. */
  ready: boolean;
  redirectUrl: string;
  signer: CookieSigner;
  store: TokenStore;
  manager: TokenManager;
  clientId: string;
  scope: string;
  pkce: boolean;
  callbackPath: string;
  /** The portal's public origin (its redirect URL's), which a state-changing POST must come from. */
  origin: string;
  /** That origin's host (and port): a GET on another host name is sent there, where the cookies live. */
  host: string;
  admins: Set<string>;
  sessions: SessionTable;
  /** `portal_session`, or `__Host-portal_session` over https. */
  sessionCookie: string;
  secure: boolean;
  accountsLabel: string;
  storeLabel: string;
  now: () => number;
}

function routes(app: FastifyInstance, context: Context): void {
  const { signer, store } = context;

  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });
  app.addHook('onSend', async (_request, reply) => {
    reply.headers(SECURITY_HEADERS);
  });
  app.addHook('onRequest', async (request, reply) => {
    if (!context.ready) return reply.code(503).type('text/plain').send('starting');
    // Cookies belong to a host name: a sign-in started on http://localhost:3000 while the redirect URL says
    // 127.0.0.1 (or the reverse) would come back without its cookie. On loopback, pages are served on the
    // redirect URL's host only. (Not behind a proxy, which may send its own Host: that would loop.)
    const host = request.headers.host;
    if (
      (request.method === 'GET' || request.method === 'HEAD') &&
      host !== undefined &&
      host !== context.host &&
      isLoopback(hostnameOf(host)) &&
      isLoopback(new URL(context.origin).hostname)
    ) {
      return reply.redirect(`${context.origin}${request.url}`, 308);
    }
  });

  const cookiesOf = (request: FastifyRequest) => parseCookies(request.headers.cookie);
  const sessionOf = (request: FastifyRequest): { session: Session; cookie: string } | null => {
    const cookie = cookiesOf(request).get(context.sessionCookie);
    const session = readSession(signer, cookie, Date.now());
    // A signed cookie is not enough: its session must still be live (not logged out or disconnected).
    if (session === null || !context.sessions.isLive(session, Date.now())) return null;
    return { session, cookie: cookie as string };
  };
  const pageContext = (request: FastifyRequest): PageContext => {
    const signedIn = sessionOf(request);
    return {
      user: signedIn?.session.user ?? null,
      csrf: signedIn === null ? null : signer.csrfToken(signedIn.cookie),
      accountsLabel: context.accountsLabel,
    };
  };
  const page = (reply: FastifyReply, status: number, body: string) => reply.code(status).type('text/html; charset=utf-8').send(body);
  const fail = (request: FastifyRequest, reply: FastifyReply, status: number, title: string, text: string) =>
    page(reply, status, errorPage(pageContext(request), title, text));
  const endSession = (reply: FastifyReply, session: Session | null) => {
    if (session !== null) context.sessions.end(session.id);
    return reply.header('set-cookie', cookieHeader(context.sessionCookie, '', { path: '/', maxAgeSeconds: 0, secure: context.secure }));
  };

  /** A POST that changes something: a session, the form's CSRF token, and (when the browser says) our origin. */
  const checkPost = (request: FastifyRequest, reply: FastifyReply): Session | null => {
    const origin = request.headers.origin;
    const signedIn = sessionOf(request);
    const csrf = (request.body as Record<string, unknown> | undefined)?.csrf;
    if (
      (origin !== undefined && origin !== context.origin) ||
      signedIn === null ||
      typeof csrf !== 'string' ||
      !sameText(csrf, signer.csrfToken(signedIn.cookie))
    ) {
      fail(
        request,
        reply,
        403,
        'Request refused',
        'This form was not sent from a page of this portal in your session. Open the page again and retry.',
      );
      return null;
    }
    return signedIn.session;
  };

  app.get('/', async (request, reply) => page(reply, 200, homePage(pageContext(request))));

  app.get('/login', async (_request, reply) => {
    const state = randomState();
    const { codeVerifier, codeChallenge } = context.pkce ? createPkce() : { codeVerifier: null, codeChallenge: undefined };
    const login = signer.seal(LOGIN_COOKIE, { state, codeVerifier, expires: Date.now() + LOGIN_LIFETIME_MS });
    reply.header(
      'set-cookie',
      cookieHeader(loginCookieName(state), login, {
        path: context.callbackPath,
        maxAgeSeconds: LOGIN_LIFETIME_MS / 1000,
        secure: context.secure,
      }),
    );
    const target = authorizationUrl({
      accountsUrl: context.manager.accountsUrl,
      clientId: context.clientId,
      redirectUrl: context.redirectUrl,
      scope: context.scope,
      state,
      ...(codeChallenge === undefined ? {} : { codeChallenge }),
    });
    return reply.redirect(target, 302);
  });

  app.get(context.callbackPath, async (request, reply) => {
    const query = request.query as Record<string, string | undefined>;
    // Each sign-in under way has its own cookie, named after its state: only the one of this state is read.
    const cookieName = typeof query.state === 'string' && query.state !== '' ? loginCookieName(query.state) : null;
    const pending = cookieName === null ? null : readPendingLogin(signer, cookiesOf(request).get(cookieName), Date.now());
    if (pending === null || typeof query.state !== 'string' || !sameText(query.state, pending.state)) {
      return fail(
        request,
        reply,
        400,
        'Sign-in not verified',
        'This sign-in did not start in this browser, or it took more than 10 minutes (the state does not match). Nothing was saved; sign in again.',
      );
    }
    // The sign-in is over whatever happens now: its cookie (and no other tab's) goes.
    reply.header(
      'set-cookie',
      cookieHeader(cookieName as string, '', { path: context.callbackPath, maxAgeSeconds: 0, secure: context.secure }),
    );
    // With Multi-DC on, Zoho sends a user of another data center back with that data center's accounts
    // server. The code is only good there, and the client secret is never sent to a server named in a query
    // string: the user is told instead.
    const accountsServer = query['accounts-server'];
    if (typeof accountsServer === 'string' && originOf(accountsServer) !== new URL(context.manager.accountsUrl).origin) {
      // Only a data center Zoho lists is named on the page; anything else in the query string is not repeated.
      const known = Object.entries(DATA_CENTERS).find(([, urls]) => urls.accountsUrl === originOf(accountsServer));
      const where = known !== undefined ? ` (${known[0]}, ${known[1].accountsUrl})` : '';
      return fail(
        request,
        reply,
        409,
        'Another data center',
        `Your Zoho account is in another data center${where}; this portal is set up for ${context.manager.accountsUrl}. Nothing was saved. Ask the portal's administrator for a portal set up for your data center.`,
      );
    }
    if (query.error !== undefined) {
      const denied = query.error === 'access_denied';
      return fail(
        request,
        reply,
        denied ? 403 : 400,
        denied ? 'Access denied' : 'Sign-in failed',
        denied
          ? 'You declined to give the portal access to your Zoho CRM account. Nothing was saved.'
          : 'The accounts server refused the sign-in request. Nothing was saved.',
      );
    }
    if (typeof query.code !== 'string' || query.code === '') {
      return fail(request, reply, 400, 'Sign-in failed', 'The accounts server sent no grant code. Sign in again.');
    }
    let token: OAuthToken;
    try {
      token = await context.manager.exchangeCode({
        code: query.code,
        ...(pending.codeVerifier === null ? {} : { codeVerifier: pending.codeVerifier }),
      });
    } catch (error) {
      return failedCall(request, reply, error);
    }
    // exchangeCode saves a token only once the CRM named its user.
    const user = token.userSignature?.name as string;
    const session = signer.sign(SESSION_COOKIE, context.sessions.start(user, Date.now()));
    reply.header(
      'set-cookie',
      cookieHeader(context.sessionCookie, session, { path: '/', maxAgeSeconds: SESSION_LIFETIME_MS / 1000, secure: context.secure }),
    );
    return reply.redirect('/profile', 303);
  });

  app.get('/profile', async (request, reply) => {
    const signedIn = sessionOf(request);
    if (signedIn === null) return reply.redirect('/', 303);
    const user = signedIn.session.user;
    try {
      // getToken refreshes an expired access token (once, shared); the API domain is the token's own.
      const token = await context.manager.getToken(user);
      const apiDomain = token.apiDomain ?? '';
      const response = await context.manager.fetch(user, `${apiDomain}/crm/v8/users?type=CurrentUser`);
      const body = (await response.json().catch(() => null)) as { users?: Array<Record<string, unknown>> } | null;
      const found = response.ok ? body?.users?.[0] : undefined;
      if (found === undefined) {
        return fail(
          request,
          reply,
          502,
          'Profile unavailable',
          `The CRM answered HTTP ${response.status} without a user. Try again later.`,
        );
      }
      return page(reply, 200, profilePage(pageContext(request), profileOf(found), apiDomain));
    } catch (error) {
      if (OAuthError.is(error) && error.code === 'NO_TOKEN') {
        endSession(reply, signedIn.session);
        return fail(request, reply, 401, 'Signed out', 'The portal no longer holds a token for you (it was disconnected). Sign in again.');
      }
      return failedCall(request, reply, error);
    }
  });

  app.get('/tokens', async (request, reply) => {
    const signedIn = sessionOf(request);
    if (signedIn === null) return reply.redirect('/', 303);
    const user = signedIn.session.user;
    try {
      // Every token, and where they are kept, only for the configured admins; anyone else sees their own.
      const admin = context.admins.has(user.toLowerCase());
      let tokens: OAuthToken[];
      if (admin) {
        tokens = await store.getTokens();
        tokens.sort((a, b) => (a.userSignature?.name ?? '').localeCompare(b.userSignature?.name ?? ''));
      } else {
        const own = await store.findToken(new OAuthToken({ userSignature: new UserSignature(user) }));
        tokens = own === null ? [] : [own];
      }
      return page(reply, 200, tokensPage(pageContext(request), tokens, admin ? context.storeLabel : null, context.now()));
    } catch (error) {
      return failedCall(request, reply, error);
    }
  });

  app.post('/logout', async (request, reply) => {
    const session = checkPost(request, reply);
    if (session === null) return reply;
    endSession(reply, session);
    return reply.redirect('/', 303);
  });

  app.post('/disconnect', async (request, reply) => {
    const session = checkPost(request, reply);
    if (session === null) return reply;
    try {
      const token = await store.findToken(new OAuthToken({ userSignature: new UserSignature(session.user) }));
      if (token?.id != null) await context.manager.revoke(token.id);
    } catch (error) {
      return failedCall(request, reply, error);
    }
    // Every session of the user ends, in any browser: the portal no longer holds a token for them.
    context.sessions.endUser(session.user);
    endSession(reply, session);
    return reply.redirect('/', 303);
  });

  app.setNotFoundHandler((request, reply) => fail(request, reply, 404, 'Not found', 'There is no such page in the portal.'));
  app.setErrorHandler((_error, request, reply) =>
    fail(request, reply, 500, 'Something went wrong', 'The portal could not answer this request.'),
  );

  /** An error page for a failed accounts, CRM or store call: what happened and what to do, never a secret. */
  function failedCall(request: FastifyRequest, reply: FastifyReply, error: unknown): FastifyReply {
    if (OAuthError.is(error) && error.operation === 'currentUser') {
      // The accounts server gave a token, but the CRM would not say whose: exchangeCode revoked it, nothing was saved.
      return fail(
        request,
        reply,
        502,
        'Sign-in incomplete',
        'The accounts server accepted the sign-in, but the CRM did not say who signed in (it could not be reached, or your account has no CRM access). Nothing was saved. Try again later.',
      );
    }
    if (OAuthError.is(error)) {
      switch (error.code) {
        case 'NETWORK':
        case 'SERVER_ERROR':
        case 'INVALID_RESPONSE':
          return fail(
            request,
            reply,
            502,
            'Accounts server unavailable',
            'The accounts server could not be reached or answered an error. Try again in a moment.',
          );
        case 'THROTTLED':
          return fail(request, reply, 503, 'Too many requests', 'Zoho asks the portal to slow down. Try again in a minute.');
        case 'INVALID_GRANT':
        case 'NOT_AUTHORIZED':
        case 'NO_REFRESH_TOKEN':
          return fail(
            request,
            reply,
            401,
            'Sign in again',
            "Zoho no longer accepts the portal's authorisation for you (the sign-in code was used or expired, or access was revoked). Sign in again.",
          );
        case 'INVALID_CLIENT':
        case 'INVALID_REDIRECT_URI':
          return fail(
            request,
            reply,
            500,
            'Portal misconfigured',
            "The accounts server refused the portal's client id, secret or redirect URI. Check the portal's configuration.",
          );
        default:
          return fail(request, reply, 502, 'Accounts server error', `The accounts server refused the request (${error.code}).`);
      }
    }
    if (TokenStoreError.is(error)) {
      return fail(
        request,
        reply,
        503,
        'Token store unavailable',
        `The token store could not be used (${error.code}). Try again in a moment.`,
      );
    }
    return fail(request, reply, 500, 'Something went wrong', 'The portal could not answer this request.');
  }
}

function profileOf(user: Record<string, unknown>): Profile {
  const text = (value: unknown) => (typeof value === 'string' || typeof value === 'number' ? String(value) : null);
  const named = (value: unknown) => text((value as { name?: unknown } | null)?.name);
  return {
    email: text(user.email) ?? '-',
    fullName: text(user.full_name) ?? text(user.email) ?? '-',
    id: text(user.id) ?? '-',
    role: named(user.role),
    profile: named(user.profile),
    status: text(user.status),
  };
}

function originOf(url: string): string | null {
  try {
    return new URL(url).origin;
  } catch {
    return null;
  }
}

function hostnameOf(host: string): string {
  try {
    return new URL(`http://${host}`).hostname;
  } catch {
    return '';
  }
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}
