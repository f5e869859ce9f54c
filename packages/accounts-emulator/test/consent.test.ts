import { createHash, randomBytes } from 'node:crypto';
import { type AccountsEmulator, startAccountsEmulator } from '../src/index.js';
import { currentUser, post, REDIRECT_URI, TOKEN_SHAPE } from './helpers.js';

let emulator: AccountsEmulator;
let client: { clientId: string; clientSecret: string };
beforeEach(async () => {
  emulator = await startAccountsEmulator({ defaultUserEmail: 'ana@zylker.com' });
  client = emulator.registerClient({ redirectUri: REDIRECT_URI, redirectUris: ['http://127.0.0.1:9/second'] });
});
afterEach(() => emulator.close());

interface Page {
  status: number;
  html: string;
  headers: Headers;
}

function authUrl(params: Record<string, string>): string {
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: client.clientId,
    scope: 'ZohoCRM.users.READ',
    redirect_uri: REDIRECT_URI,
    state: 'state-123',
    access_type: 'offline',
    prompt: 'consent',
    ...params,
  });
  return `${emulator.url}/oauth/v2/auth?${query}`;
}

async function open(url: string, cookie?: string): Promise<Page> {
  const response = await fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} });
  return { status: response.status, html: await response.text(), headers: response.headers };
}

/** The consent page's nonce and the browser cookie it set. */
async function consentPage(params: Record<string, string> = {}): Promise<{ nonce: string; cookie: string; page: Page }> {
  const page = await open(authUrl(params));
  expect(page.status).toBe(200);
  const nonce = /name="consent" value="([^"]+)"/.exec(page.html)?.[1];
  const cookie = (page.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  expect(nonce).toBeDefined();
  expect(cookie).toMatch(/^zoho_emulator_browser=.+/);
  return { nonce: nonce as string, cookie, page };
}

async function answer(fields: Record<string, string>, cookie: string | undefined): Promise<Page> {
  const response = await fetch(`${emulator.url}/oauth/v2/auth/consent`, {
    method: 'POST',
    redirect: 'manual',
    headers: cookie ? { cookie } : {},
    body: new URLSearchParams(fields),
  });
  return { status: response.status, html: await response.text(), headers: response.headers };
}

function exchange(code: string, extra: Record<string, string> = {}) {
  return post(`${emulator.url}/oauth/v2/token`, {
    grant_type: 'authorization_code',
    code,
    client_id: client.clientId,
    client_secret: client.clientSecret,
    redirect_uri: REDIRECT_URI,
    ...extra,
  });
}

function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

describe('the authorisation page', () => {
  it('shows a consent form that cannot be framed, and Accept redirects with code, state, location and accounts-server', async () => {
    const { nonce, cookie, page } = await consentPage();
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    // The form may post to the emulator and be redirected to the client's redirect URI, nowhere else.
    expect(page.headers.get('content-security-policy')).toContain("form-action 'self' https://app.example.com;");
    expect(page.headers.get('set-cookie')).toMatch(/HttpOnly; SameSite=Strict/);
    expect(page.html).toContain(client.clientId);
    expect(page.html).toContain('ZohoCRM.users.READ');
    expect(page.html).toContain('value="ana@zylker.com"');

    const reply = await answer({ consent: nonce, email: 'bo@zylker.com', decision: 'accept' }, cookie);
    expect(reply.status).toBe(302);
    const location = new URL(reply.headers.get('location') as string);
    expect(`${location.origin}${location.pathname}`).toBe(REDIRECT_URI);
    expect(location.searchParams.get('state')).toBe('state-123');
    expect(location.searchParams.get('location')).toBe('us');
    expect(location.searchParams.get('accounts-server')).toBe(emulator.url);
    const code = location.searchParams.get('code') as string;
    expect(code).toMatch(TOKEN_SHAPE);

    const tokens = await exchange(code);
    expect(tokens.body.refresh_token).toMatch(TOKEN_SHAPE);
    expect(tokens.body.scope).toBe('ZohoCRM.users.READ');
    const user = await currentUser(emulator, tokens.body.access_token);
    expect(user.body.users).toEqual([expect.objectContaining({ email: 'bo@zylker.com' })]);
  });

  it('Reject redirects with error=access_denied and the state, and no code', async () => {
    const { nonce, cookie } = await consentPage();
    const reply = await answer({ consent: nonce, email: 'ana@zylker.com', decision: 'reject' }, cookie);
    expect(reply.status).toBe(302);
    const location = new URL(reply.headers.get('location') as string);
    expect(Object.fromEntries(location.searchParams)).toEqual({ error: 'access_denied', state: 'state-123' });
    expect(emulator.counts().codeExchanges).toBe(0);
  });

  it('refuses an unknown client or an unregistered redirect URI with an error page, never a redirect', async () => {
    const refused: Array<Record<string, string>> = [
      { client_id: '1000.UNKNOWN' },
      { redirect_uri: 'https://evil.example/callback' },
      { redirect_uri: `${REDIRECT_URI}/more` },
      { redirect_uri: '' },
    ];
    for (const params of refused) {
      const page = await open(authUrl(params));
      expect([page.status, page.headers.get('location')]).toEqual([400, null]);
      expect(page.html).toMatch(/Invalid (Client|Redirect Uri)/);
      expect(page.html).not.toContain('evil.example');
    }
    // A second registered redirect URI is accepted.
    expect((await open(authUrl({ redirect_uri: 'http://127.0.0.1:9/second' }))).status).toBe(200);
  });

  it('sends request errors back to a registered redirect URI', async () => {
    const cases: Array<[Record<string, string>, string]> = [
      [{ response_type: 'token' }, 'unsupported_response_type'],
      [{ scope: '' }, 'invalid_scope'],
      [{ code_challenge: pkce().challenge, code_challenge_method: 'plain' }, 'invalid_request'],
      [{ code_challenge: 'short', code_challenge_method: 'S256' }, 'invalid_request'],
    ];
    for (const [params, error] of cases) {
      const page = await open(authUrl(params));
      expect(page.status).toBe(302);
      const location = new URL(page.headers.get('location') as string);
      expect([location.searchParams.get('error'), location.searchParams.get('state'), location.searchParams.get('code')]).toEqual([
        error,
        'state-123',
        null,
      ]);
    }
  });

  it('takes a consent only once, only from the browser it was shown to, and only within 10 minutes', async () => {
    const first = await consentPage();
    const stranger = await consentPage();
    const accept = (consent: string) => ({ consent, email: 'ana@zylker.com', decision: 'accept' });
    // Another browser's cookie, no cookie, a made-up nonce: refused, no redirect.
    for (const reply of [
      await answer(accept(first.nonce), stranger.cookie),
      await answer(accept(first.nonce), undefined),
      await answer(accept(randomBytes(24).toString('base64url')), first.cookie),
    ]) {
      expect([reply.status, reply.headers.get('location')]).toEqual([400, null]);
    }
    expect((await answer(accept(first.nonce), first.cookie)).status).toBe(302);
    expect((await answer(accept(first.nonce), first.cookie)).status).toBe(400); // used

    // The cookie is the browser's: a second page in the same browser keeps it.
    const again = await open(authUrl({}), first.cookie);
    expect(again.headers.get('set-cookie')?.split(';')[0]).toBe(first.cookie);

    const late = await consentPage();
    emulator.advance(10 * 60_000 + 1000);
    const reply = await answer(accept(late.nonce), late.cookie);
    expect([reply.status, reply.headers.get('location')]).toEqual([400, null]);
    expect(reply.html).toContain('expired');
  });

  it('refuses an email that is not one, without a redirect', async () => {
    const { nonce, cookie } = await consentPage();
    const reply = await answer({ consent: nonce, email: '<script>@x', decision: 'accept' }, cookie);
    expect([reply.status, reply.headers.get('location')]).toEqual([400, null]);
    expect(reply.html).not.toContain('<script>');
  });

  it('escapes what the request carries on the page', async () => {
    const page = await open(authUrl({ scope: 'ZohoCRM.users.READ,<img src=x onerror=alert(1)>' }));
    expect(page.status).toBe(200);
    expect(page.html).not.toContain('<img');
    expect(page.html).toContain('&lt;img');
  });
});

describe('PKCE (S256)', () => {
  async function codeWith(challenge: string): Promise<string> {
    const { nonce, cookie } = await consentPage({ code_challenge: challenge, code_challenge_method: 'S256' });
    const reply = await answer({ consent: nonce, email: 'ana@zylker.com', decision: 'accept' }, cookie);
    return new URL(reply.headers.get('location') as string).searchParams.get('code') as string;
  }

  it('exchanges the code only with the matching code_verifier', async () => {
    const { verifier, challenge } = pkce();
    const code = await codeWith(challenge);
    const tokens = await exchange(code, { code_verifier: verifier });
    expect(tokens.body.refresh_token).toMatch(TOKEN_SHAPE);
  });

  it('answers invalid_code without a verifier or with a wrong one, and the code is then used up', async () => {
    const { verifier, challenge } = pkce();
    expect((await exchange(await codeWith(challenge))).body).toEqual({ error: 'invalid_code' });
    const code = await codeWith(challenge);
    expect((await exchange(code, { code_verifier: pkce().verifier })).body).toEqual({ error: 'invalid_code' });
    expect((await exchange(code, { code_verifier: verifier })).body).toEqual({ error: 'invalid_code' });
    expect(emulator.counts().codeExchanges).toBe(0);
  });

  it('issueGrantCode takes a codeChallenge too', async () => {
    const { verifier, challenge } = pkce();
    const code = emulator.issueGrantCode({ clientId: client.clientId, userEmail: 'ana@zylker.com', codeChallenge: challenge });
    expect((await exchange(code, { code_verifier: `${verifier.slice(0, -1)}${verifier.endsWith('A') ? 'B' : 'A'}` })).body).toEqual({
      error: 'invalid_code',
    });
    const other = emulator.issueGrantCode({ clientId: client.clientId, userEmail: 'ana@zylker.com', codeChallenge: challenge });
    expect((await exchange(other, { code_verifier: verifier })).body.refresh_token).toMatch(TOKEN_SHAPE);
  });
});
