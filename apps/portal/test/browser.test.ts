// The portal in a real browser (Debian's chromium through playwright-core), against the real app and the
// accounts emulator on loopback, on a SQLite and a PostgreSQL store. Screenshots of every page go to
// test-output/.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OAuthToken, openTokenStore, type TokenStore, UserSignature } from '@crm/core';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { type Portal, startPortal } from '../src/index.js';

jest.setTimeout(180_000);

// PORTAL_TEST_CHROMIUM only to check the failure where Chromium is missing; the tests use Debian's package.
const CHROMIUM = process.env.PORTAL_TEST_CHROMIUM ?? '/usr/bin/chromium';
const OUTPUT = join(__dirname, '..', 'test-output');
const POSTGRES_URL = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

let browser: Browser;
beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    // Never skipped: the browser tests fail until Chromium is there.
    throw new Error(`The portal's browser tests need Chromium at ${CHROMIUM}. Install it with:\napt-get install -y chromium`);
  }
  mkdirSync(OUTPUT, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});
afterAll(async () => {
  await browser?.close();
});

/** Drops a test schema through the `pg` driver the PostgreSQL store depends on. */
async function dropPostgresSchema(schema: string): Promise<void> {
  const storeRequire = createRequire(require.resolve('@crm/store-postgres'));
  const { Client } = storeRequire('pg') as {
    Client: new (config: {
      connectionString: string;
    }) => { connect(): Promise<void>; query(sql: string): Promise<unknown>; end(): Promise<void> };
  };
  const client = new Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

interface StoreCase {
  name: string;
  /** A fresh, empty store URL, and how to remove what it made. */
  create(): { url: string; remove(): Promise<void> };
}

const STORES: StoreCase[] = [
  {
    name: 'sqlite',
    create() {
      const dir = mkdtempSync(join(tmpdir(), 'portal-test-'));
      return { url: `sqlite:${join(dir, 'portal.db')}`, remove: async () => rmSync(dir, { recursive: true, force: true }) };
    },
  },
  {
    name: 'postgres',
    create() {
      const schema = `portal_${randomBytes(6).toString('hex')}`;
      const separator = POSTGRES_URL.includes('?') ? '&' : '?';
      return {
        url: `${POSTGRES_URL}${separator}schema=${schema}&table=tokens_${randomBytes(4).toString('hex')}`,
        remove: () => dropPostgresSchema(schema),
      };
    },
  },
];

describe.each(STORES)('the portal on $name', (storeCase) => {
  let portal: Portal;
  let context: BrowserContext;
  let page: Page;
  /** A second handle on the portal's store, as another process would open it. */
  let store: TokenStore;
  let remove: () => Promise<void>;

  beforeEach(async () => {
    const created = storeCase.create();
    remove = created.remove;
    portal = await startPortal({ storeUrl: created.url, port: 0 });
    store = await openTokenStore(created.url, { load: (name) => import(name) });
    context = await browser.newContext();
    page = await context.newPage();
  });
  afterEach(async () => {
    await context?.close();
    await store?.close?.();
    await portal?.close();
    await remove?.();
  });

  const shot = (name: string) => page.screenshot({ path: join(OUTPUT, `${storeCase.name}-${name}.png`), fullPage: true });
  const tokenOf = (user: string) => store.findToken(new OAuthToken({ userSignature: new UserSignature(user) }));

  /** Home, Login with Zoho, the emulator's consent page, Accept: ends on the profile page. */
  async function signIn(email: string, screenshots = false): Promise<void> {
    await page.goto(portal.url);
    if (screenshots) await shot('1-home');
    await page.click('#login');
    await page.waitForURL(`${portal.emulator?.url}/oauth/v2/auth**`);
    await page.fill('input[name=email]', email);
    if (screenshots) await shot('2-consent');
    await page.click('#accept');
    await page.waitForURL(`${portal.url}profile`);
  }

  it('signs in, shows the profile, refreshes once after expiry, lists tokens without secrets, disconnects', async () => {
    const email = `ana.${storeCase.name}@zylker.com`;
    await signIn(email, true);
    expect(await page.textContent('#email')).toBe(email);
    expect(await page.textContent('#user')).toBe(email);
    await shot('3-profile');

    // The token is in the store under the user's name; the session cookie holds the name only.
    const stored = (await tokenOf(email)) as OAuthToken;
    expect(stored.refreshToken).toMatch(/^1000\./);
    const session = (await context.cookies()).find((cookie) => cookie.name === 'portal_session');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Lax' });
    // The spent grant code is not kept.
    expect(stored.grantToken).toBeNull();
    const secrets = [stored.accessToken, stored.refreshToken, stored.clientSecret] as string[];
    for (const secret of secrets) expect(decodeURIComponent(session?.value ?? '')).not.toContain(secret);
    expect(JSON.parse(Buffer.from((session?.value ?? '').split('.')[0] as string, 'base64url').toString())).toEqual({
      user: email,
      id: expect.any(String),
      since: expect.any(Number),
    });

    // Time moves past the access token's expiry: the profile still shows, after exactly one refresh.
    const emulator = portal.emulator!;
    expect(emulator.counts()).toMatchObject({ codeExchanges: 1, refreshes: 0 });
    emulator.advance(3_600_000 + 60_000);
    await page.reload();
    expect(await page.textContent('#email')).toBe(email);
    expect(emulator.counts().refreshes).toBe(1);
    await page.reload();
    expect(emulator.counts().refreshes).toBe(1);
    const refreshed = (await tokenOf(email)) as OAuthToken;
    expect(refreshed.accessToken).not.toBe(stored.accessToken);
    expect(refreshed.refreshToken).toBe(stored.refreshToken);

    // The tokens page: every token listed, no secret in the HTML.
    await page.click('a[href="/tokens"]');
    await page.waitForURL(`${portal.url}tokens`);
    const html = await page.content();
    expect(html).toContain(email);
    expect(html).toContain('[redacted …');
    expect(await page.locator('#tokens tbody tr').count()).toBe(1);
    for (const secret of [...secrets, refreshed.accessToken as string]) expect(html).not.toContain(secret);
    await shot('4-tokens');

    // Disconnect: revoked at the accounts server, gone from the store, signed out.
    await page.goto(`${portal.url}profile`);
    await page.click('#disconnect');
    await page.waitForURL(portal.url);
    expect(await page.isVisible('#login')).toBe(true);
    await shot('5-after-disconnect');
    expect(await tokenOf(email)).toBeNull();
    expect(await store.getTokens()).toEqual([]);
    expect(emulator.counts().revocations).toBe(1);
    const refreshAfter = await fetch(`${emulator.url}/oauth/v2/token`, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: stored.refreshToken as string,
        client_id: stored.clientId as string,
        client_secret: stored.clientSecret as string,
      }),
    });
    expect(await refreshAfter.json()).toEqual({ error: 'invalid_code' });
  });

  it('refuses a forged callback, a declined consent and a cross-site POST; logout ends the session only', async () => {
    const emulator = portal.emulator!;
    // A callback with a real grant code for the portal's client but a state this browser never got.
    const target = new URL(await loginTarget());
    const clientId = target.searchParams.get('client_id') as string;
    // Every sign-in carries a PKCE challenge.
    expect(target.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(target.searchParams.get('code_challenge_method')).toBe('S256');
    const code = emulator.issueGrantCode({ clientId, userEmail: 'mallory@example.com', redirectUri: portal.redirectUrl });
    const forged = await page.goto(`${portal.redirectUrl}?code=${encodeURIComponent(code)}&state=forged-state`);
    expect(forged?.status()).toBe(400);
    expect(await page.textContent('h1')).toBe('Sign-in not verified');
    await shot('6-bad-state');
    expect(emulator.counts().codeExchanges).toBe(0);
    expect(await store.getTokens()).toEqual([]);

    // Reject on the consent page.
    await page.goto(portal.url);
    await page.click('#login');
    await page.waitForURL(`${emulator.url}/oauth/v2/auth**`);
    await page.click('#reject');
    await page.waitForURL(`${portal.redirectUrl}**`);
    expect(await page.textContent('h1')).toBe('Access denied');
    await shot('7-access-denied');
    expect(await store.getTokens()).toEqual([]);

    // Signed in, a POST without the page's CSRF token, or from another origin, changes nothing.
    const email = `bo.${storeCase.name}@zylker.com`;
    await signIn(email);
    const noToken = await context.request.post(`${portal.url}disconnect`, { form: { csrf: 'guessed' } });
    expect(noToken.status()).toBe(403);
    const csrf = await page.getAttribute('form[action="/disconnect"] input[name=csrf]', 'value');
    const crossSite = await context.request.post(`${portal.url}disconnect`, {
      form: { csrf: csrf as string },
      headers: { origin: 'https://evil.example' },
    });
    expect(crossSite.status()).toBe(403);
    expect(await tokenOf(email)).not.toBeNull();
    expect(emulator.counts().revocations).toBe(0);

    // Logout: the session ends (for a copy of its cookie too), the token stays.
    const copied = (await context.cookies()).find((cookie) => cookie.name === 'portal_session') as { value: string };
    await page.click('#logout');
    await page.waitForURL(portal.url);
    expect(await page.isVisible('#login')).toBe(true);
    await page.goto(`${portal.url}profile`);
    expect(page.url()).toBe(portal.url);
    const replayed = await fetch(`${portal.url}profile`, { redirect: 'manual', headers: { cookie: `portal_session=${copied.value}` } });
    expect(replayed.status).toBe(303);
    expect(await tokenOf(email)).not.toBeNull();
    expect(emulator.counts().revocations).toBe(0);

    // The accounts server goes away while the token needs a refresh: an error page without secrets.
    await signIn(email);
    const stored = (await tokenOf(email)) as OAuthToken;
    emulator.advance(3_600_000 + 60_000);
    await emulator.close();
    const down = await page.reload();
    expect(down?.status()).toBe(502);
    expect(await page.textContent('h1')).toBe('Accounts server unavailable');
    const html = await page.content();
    for (const secret of [stored.accessToken, stored.refreshToken, stored.clientSecret] as string[]) expect(html).not.toContain(secret);
    await shot('8-accounts-server-down');
  });

  /** Where "Login with Zoho" sends the browser, without following it. */
  async function loginTarget(): Promise<string> {
    const response = await context.request.get(`${portal.url}login`, { maxRedirects: 0 });
    expect(response.status()).toBe(302);
    return response.headers().location as string;
  }
});
