// The portal's sign-in, sessions and tokens page over plain HTTP (a small cookie jar instead of a browser),
// against the real app, the accounts emulator and a SQLite store: the cases a browser test would only repeat.
import { mkdtempSync, rmSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AccountsEmulator, startAccountsEmulator } from '@crm/accounts-emulator';
import { type Portal, startPortal } from '../src/index.js';

jest.setTimeout(60_000);

/** Cookies by name, as a browser keeps them for one host (the portal and the emulator share 127.0.0.1). */
class Jar {
  readonly cookies = new Map<string, string>();

  header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }

  async get(url: string, headers: Record<string, string> = {}): Promise<Response> {
    return this.#take(await fetch(url, { redirect: 'manual', headers: { cookie: this.header(), ...headers } }));
  }

  async post(url: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
    const response = await fetch(url, {
      method: 'POST',
      redirect: 'manual',
      body: new URLSearchParams(form),
      headers: { cookie: this.header(), 'content-type': 'application/x-www-form-urlencoded', ...headers },
    });
    return this.#take(response);
  }

  #take(response: Response): Response {
    for (const line of response.headers.getSetCookie()) {
      const pair = line.split(';')[0] as string;
      const index = pair.indexOf('=');
      const name = pair.slice(0, index);
      if (/Max-Age=0/.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, pair.slice(index + 1));
    }
    return response;
  }
}

let dir: string;
let portal: Portal;
let emulator: AccountsEmulator;

async function start(options: Parameters<typeof startPortal>[0] = {}): Promise<Portal> {
  portal = await startPortal({ storeUrl: `sqlite:${join(dir, `portal-${Date.now()}.db`)}`, port: 0, ...options });
  emulator = portal.emulator as AccountsEmulator;
  return portal;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'portal-http-'));
});
afterEach(async () => {
  await portal?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** /login, then the consent page as `email`: the callback URL the browser would open next, and the authorisation URL. */
async function consent(jar: Jar, email: string, emulatorUrl = emulator.url): Promise<{ callback: string; authUrl: string }> {
  const login = await jar.get(`${portal.url}login`);
  expect(login.status).toBe(302);
  const authUrl = login.headers.get('location') as string;
  const page = await jar.get(authUrl);
  const nonce = /name="consent" value="([^"]+)"/.exec(await page.text())?.[1] as string;
  const answer = await jar.post(`${emulatorUrl}/oauth/v2/auth/consent`, { consent: nonce, email, decision: 'accept' });
  expect(answer.status).toBe(302);
  return { callback: answer.headers.get('location') as string, authUrl };
}

async function signIn(jar: Jar, email: string): Promise<Response> {
  const { callback } = await consent(jar, email);
  return jar.get(callback);
}

/** Who the profile page says is signed in, or null when it sends the browser home. */
async function whoIs(jar: Jar): Promise<string | null> {
  const response = await jar.get(`${portal.url}profile`);
  if (response.status === 303) return null;
  return /id="email">([^<]*)</.exec(await response.text())?.[1] ?? null;
}

async function csrfOf(jar: Jar): Promise<string> {
  const html = await (await jar.get(`${portal.url}profile`)).text();
  return /name="csrf" value="([^"]+)"/.exec(html)?.[1] as string;
}

describe('sign-in', () => {
  it('sends a PKCE S256 challenge; a used code replayed with a fresh state is refused and signs nobody in', async () => {
    await start();
    const victim = new Jar();
    const { callback, authUrl } = await consent(victim, 'ana@zylker.com');
    const auth = new URL(authUrl);
    expect(auth.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(auth.searchParams.get('code_challenge_method')).toBe('S256');
    expect((await victim.get(callback)).status).toBe(303);
    expect(await whoIs(victim)).toBe('ana@zylker.com');

    // The used code (from a log, a Referer, the history) with the attacker's own fresh state and cookie.
    const code = new URL(callback).searchParams.get('code') as string;
    const attacker = new Jar();
    const login = await attacker.get(`${portal.url}login`);
    const state = new URL(login.headers.get('location') as string).searchParams.get('state') as string;
    const before = emulator.counts().tokenRequests;
    const replay = await attacker.get(`${portal.redirectUrl}?code=${encodeURIComponent(code)}&state=${encodeURIComponent(state)}`);
    expect(replay.status).toBe(401);
    expect(await replay.text()).toContain('Sign in again');
    expect(emulator.counts().tokenRequests).toBe(before + 1);
    expect(await whoIs(attacker)).toBeNull();
    expect([...attacker.cookies.keys()].some((name) => name.includes('session'))).toBe(false);
  });

  it('lets two tabs sign in at once: each callback finds its own sign-in cookie', async () => {
    await start();
    const jar = new Jar();
    const one = await consent(jar, 'ana@zylker.com');
    const two = await consent(jar, 'ana@zylker.com');
    expect((await jar.get(one.callback)).status).toBe(303);
    expect((await jar.get(two.callback)).status).toBe(303);
    expect(emulator.counts().codeExchanges).toBe(2);
    expect(await whoIs(jar)).toBe('ana@zylker.com');
  });

  it('signing in again revokes the refresh token it replaced', async () => {
    await start();
    const jar = new Jar();
    await signIn(jar, 'ana@zylker.com');
    const first = (await portal.store.getTokens())[0]?.refreshToken as string;
    await signIn(jar, 'ana@zylker.com');
    const tokens = await portal.store.getTokens();
    expect(tokens).toHaveLength(1);
    expect(tokens[0]?.refreshToken).not.toBe(first);
    expect(emulator.counts().revocations).toBe(1);
    const old = await fetch(`${emulator.url}/oauth/v2/token`, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: first,
        client_id: tokens[0]?.clientId as string,
        client_secret: tokens[0]?.clientSecret as string,
      }),
    });
    expect(await old.json()).toEqual({ error: 'invalid_code' });
  });

  it('a user of another data center gets a page saying so, and no code is sent anywhere', async () => {
    await start();
    const jar = new Jar();
    const { callback } = await consent(jar, 'ana@zylker.com');
    const elsewhere = new URL(callback);
    elsewhere.searchParams.set('location', 'eu');
    elsewhere.searchParams.set('accounts-server', 'https://accounts.zoho.eu');
    const before = emulator.counts().tokenRequests;
    const response = await jar.get(elsewhere.toString());
    expect(response.status).toBe(409);
    const html = await response.text();
    expect(html).toContain('Another data center');
    expect(html).toContain('(EU, https://accounts.zoho.eu)');
    expect(emulator.counts().tokenRequests).toBe(before);
    expect(await portal.store.getTokens()).toEqual([]);
  });

  it('when the CRM does not say who signed in, keeps no token, revokes it, and says the CRM failed', async () => {
    const port = await freePort();
    const redirectUrl = `http://127.0.0.1:${port}/oauth/callback`;
    // The API domain is a closed port: the current-user call fails.
    const accounts = await startAccountsEmulator({ apiDomain: 'http://127.0.0.1:9' });
    try {
      const client = accounts.registerClient({ redirectUri: redirectUrl });
      await start({ port, zoho: { ...client, accountsUrl: accounts.url, redirectUrl }, log: () => undefined });
      for (let attempt = 1; attempt <= 2; attempt++) {
        const jar = new Jar();
        const { callback } = await consent(jar, 'ana@zylker.com', accounts.url);
        const response = await jar.get(callback);
        expect(response.status).toBe(502);
        const html = await response.text();
        expect(html).toContain('the CRM did not say who signed in');
        expect(accounts.counts().revocations).toBe(attempt);
      }
      expect(await portal.store.getTokens()).toEqual([]);
    } finally {
      await portal.close();
      await accounts.close();
    }
  });

  it('sends a page opened on another host name to the redirect URL host, where the cookies are', async () => {
    await start();
    const url = new URL(portal.url);
    const response = await fetch(`http://localhost:${url.port}/login?x=1`, { redirect: 'manual' });
    expect(response.status).toBe(308);
    expect(response.headers.get('location')).toBe(`${portal.url}login?x=1`);
    expect(response.headers.getSetCookie()).toEqual([]);
    // Behind a proxy that sends its own Host, no redirect (it would loop).
    expect(await statusWithHost(portal.url, 'portal.example.com')).toBe(200);
    expect(await statusWithHost(portal.url, `localhost:${url.port}`)).toBe(308);
  });
});

describe('sessions', () => {
  it('a copied cookie stops working after logout and after disconnect, and does not come back with a new sign-in', async () => {
    await start();
    const jar = new Jar();
    await signIn(jar, 'ana@zylker.com');
    const copy = new Jar();
    for (const [name, value] of jar.cookies) copy.cookies.set(name, value);
    expect(await whoIs(copy)).toBe('ana@zylker.com');
    expect((await jar.post(`${portal.url}logout`, { csrf: await csrfOf(jar) }, { origin: new URL(portal.url).origin })).status).toBe(303);
    expect(await whoIs(copy)).toBeNull();
    await signIn(jar, 'ana@zylker.com');
    expect(await whoIs(copy)).toBeNull();
    expect(await whoIs(jar)).toBe('ana@zylker.com');

    // Disconnect ends the session of every browser of the user.
    const other = new Jar();
    await signIn(other, 'ana@zylker.com');
    const copied = new Jar();
    for (const [name, value] of jar.cookies) copied.cookies.set(name, value);
    expect((await jar.post(`${portal.url}disconnect`, { csrf: await csrfOf(jar) })).status).toBe(303);
    expect(await whoIs(copied)).toBeNull();
    expect(await whoIs(other)).toBeNull();
    expect(await portal.store.getTokens()).toEqual([]);
  });
});

describe('the tokens page', () => {
  it("shows a user their own token only, and an admin every token and the store's name", async () => {
    await start({ admins: ['Admin@Zylker.com'] });
    const ana = new Jar();
    await signIn(ana, 'ana@zylker.com');
    const bo = new Jar();
    await signIn(bo, 'bo@zylker.com');
    const admin = new Jar();
    await signIn(admin, 'admin@zylker.com');
    const own = await (await ana.get(`${portal.url}tokens`)).text();
    expect(own).toContain('ana@zylker.com');
    expect(own).not.toContain('bo@zylker.com');
    expect(own).not.toContain('admin@zylker.com');
    expect(own).not.toContain(dir);
    expect(own.match(/<tr[ >]/g)?.length).toBe(2); // the header row and ana's
    const all = await (await admin.get(`${portal.url}tokens`)).text();
    for (const email of ['ana@zylker.com', 'bo@zylker.com', 'admin@zylker.com']) expect(all).toContain(email);
    expect(all).toContain(portal.storeLabel);
  });
});

/** The status of a GET sent with this Host header (node:http sends it as given). */
function statusWithHost(url: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = httpGet(url, { headers: { host } }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.once('error', reject);
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
