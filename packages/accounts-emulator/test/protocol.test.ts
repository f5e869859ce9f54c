import { type AccountsEmulator, startAccountsEmulator, THROTTLED_DESCRIPTION } from '../src/index.js';
import { currentUser, post, REDIRECT_URI, refresh, signIn, TOKEN_SHAPE } from './helpers.js';

let emulator: AccountsEmulator;
beforeEach(async () => {
  emulator = await startAccountsEmulator();
});
afterEach(() => emulator.close());

const MINUTE = 60_000;

function exchange(code: string, client: { clientId: string; clientSecret: string }, redirectUri = REDIRECT_URI) {
  return post(`${emulator.url}/oauth/v2/token`, {
    grant_type: 'authorization_code',
    code,
    client_id: client.clientId,
    client_secret: client.clientSecret,
    redirect_uri: redirectUri,
  });
}

describe('grant code exchange', () => {
  it('gives tokens in Zoho shape, and the access token reads the current user', async () => {
    const client = emulator.registerClient({ redirectUri: REDIRECT_URI });
    const code = emulator.issueGrantCode({ clientId: client.clientId, userEmail: 'ana@zylker.com', orgId: '700123456' });
    expect(code).toMatch(TOKEN_SHAPE);
    const reply = await exchange(code, client);
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ api_domain: emulator.url, token_type: 'Bearer', expires_in: 3600 });
    expect(reply.body.access_token).toMatch(TOKEN_SHAPE);
    expect(reply.body.refresh_token).toMatch(TOKEN_SHAPE);
    expect(reply.body).not.toHaveProperty('expires_in_sec');

    const user = await currentUser(emulator, reply.body.access_token);
    expect(user.status).toBe(200);
    expect(user.body.users).toEqual([expect.objectContaining({ email: 'ana@zylker.com', full_name: 'ana', id: expect.any(String) })]);
    const org = await fetch(`${emulator.url}/crm/v8/org`, { headers: { Authorization: `Zoho-oauthtoken ${reply.body.access_token}` } });
    expect(await org.json()).toEqual({ org: [expect.objectContaining({ id: '700123456' })] });
    expect(emulator.counts()).toEqual({ tokenRequests: 1, codeExchanges: 1, refreshes: 0, revocations: 0, throttled: 0 });
  });

  it("takes the fields as multipart/form-data too, as Zoho's SDKs send them", async () => {
    const client = emulator.registerClient({ redirectUri: REDIRECT_URI });
    const form = new FormData();
    form.set('grant_type', 'authorization_code');
    form.set('code', emulator.issueGrantCode({ clientId: client.clientId, userEmail: 'ana@zylker.com' }));
    form.set('client_id', client.clientId);
    form.set('client_secret', client.clientSecret);
    form.set('redirect_uri', REDIRECT_URI);
    const response = await fetch(`${emulator.url}/oauth/v2/token`, { method: 'POST', body: form });
    expect(response.headers.get('content-type')).toContain('application/json');
    const body = (await response.json()) as Record<string, unknown>;
    expect(body.refresh_token).toMatch(TOKEN_SHAPE);
    const broken = await fetch(`${emulator.url}/oauth/v2/token`, {
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=nothing-here' },
      body: 'not a multipart body',
    });
    expect([broken.status, await broken.json()]).toEqual([400, expect.objectContaining({ error: 'invalid_request' })]);
  });

  it('answers invalid_code, with HTTP 200, for a code used once already', async () => {
    const client = emulator.registerClient({ redirectUri: REDIRECT_URI });
    const code = emulator.issueGrantCode({ clientId: client.clientId, userEmail: 'ana@zylker.com' });
    expect((await exchange(code, client)).status).toBe(200);
    expect(await exchange(code, client)).toEqual({ status: 200, body: { error: 'invalid_code' } });
  });

  it('answers invalid_code for a code 3 minutes old, and takes one a moment younger', async () => {
    const client = emulator.registerClient({ redirectUri: REDIRECT_URI });
    const young = emulator.issueGrantCode({ clientId: client.clientId, userEmail: 'ana@zylker.com' });
    emulator.advance(3 * MINUTE - 1000); // the built-in clock also runs with real time: keep a margin
    expect((await exchange(young, client)).body).toHaveProperty('access_token');
    const old = emulator.issueGrantCode({ clientId: client.clientId, userEmail: 'ana@zylker.com' });
    emulator.advance(3 * MINUTE);
    expect(await exchange(old, client)).toEqual({ status: 200, body: { error: 'invalid_code' } });
  });

  it('answers invalid_client for a wrong secret or an unknown client, and keeps the code usable', async () => {
    const client = emulator.registerClient({ redirectUri: REDIRECT_URI });
    const code = emulator.issueGrantCode({ clientId: client.clientId, userEmail: 'ana@zylker.com' });
    expect(await exchange(code, { ...client, clientSecret: 'wrong' })).toEqual({ status: 200, body: { error: 'invalid_client' } });
    expect(await exchange(code, { ...client, clientId: '1000.UNKNOWN' })).toEqual({ status: 200, body: { error: 'invalid_client' } });
    expect((await exchange(code, client)).body).toHaveProperty('refresh_token');
  });

  it('answers invalid_redirect_uri for another redirect URI, and invalid_code for a code of another client', async () => {
    const client = emulator.registerClient({ redirectUri: REDIRECT_URI });
    const other = emulator.registerClient({ redirectUri: REDIRECT_URI });
    const code = emulator.issueGrantCode({ clientId: client.clientId, userEmail: 'ana@zylker.com' });
    expect(await exchange(code, client, 'https://evil.example.com/')).toEqual({ status: 200, body: { error: 'invalid_redirect_uri' } });
    expect(await exchange(code, other)).toEqual({ status: 200, body: { error: 'invalid_code' } });
    expect((await exchange(code, client)).status).toBe(200);
  });

  it('can answer in the older shape, expires_in in milliseconds with expires_in_sec', async () => {
    await emulator.close();
    emulator = await startAccountsEmulator({ expiresInMilliseconds: true, accessTokenLifetimeMs: 120_000 });
    const session = await signIn(emulator);
    expect((await refresh(emulator, session)).body).toMatchObject({ expires_in: 120_000, expires_in_sec: 120 });
  });
});

describe('refresh', () => {
  it('gives a new working access token after expiry; the expired one gets INVALID_OAUTHTOKEN', async () => {
    const session = await signIn(emulator);
    expect((await currentUser(emulator, session.accessToken)).status).toBe(200);
    emulator.advance(60 * MINUTE);
    expect(await currentUser(emulator, session.accessToken)).toEqual({
      status: 401,
      body: { code: 'INVALID_OAUTHTOKEN', details: {}, message: 'invalid oauth token', status: 'error' },
    });
    const reply = await refresh(emulator, session);
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ api_domain: emulator.url, token_type: 'Bearer', expires_in: 3600 });
    expect(reply.body).not.toHaveProperty('refresh_token');
    expect(reply.body.access_token).toMatch(TOKEN_SHAPE);
    expect((await currentUser(emulator, reply.body.access_token)).status).toBe(200);
    expect((await currentUser(emulator, session.accessToken)).status).toBe(401);
  });

  it('answers invalid_client for a wrong secret and invalid_code for an unknown refresh token', async () => {
    const session = await signIn(emulator);
    expect((await refresh(emulator, { ...session, clientSecret: 'wrong' })).body).toEqual({ error: 'invalid_client' });
    expect((await refresh(emulator, { ...session, refreshToken: '1000.abc.def' })).body).toEqual({ error: 'invalid_code' });
  });

  it('throttles the 11th refresh in 10 minutes, and refreshes again once the window has passed', async () => {
    const session = await signIn(emulator);
    for (let i = 0; i < 10; i++) {
      expect((await refresh(emulator, session)).body).toHaveProperty('access_token');
      emulator.advance(10_000);
    }
    const throttled = await refresh(emulator, session);
    expect(throttled).toEqual({
      status: 400,
      body: { error: 'Access Denied', error_description: THROTTLED_DESCRIPTION, status: 'failure' },
    });
    expect(emulator.counts()).toMatchObject({ refreshes: 10, throttled: 1 });
    // The first refresh was 100 s ago; one more slot frees when it leaves the 10-minute window.
    emulator.advance(10 * MINUTE - 100_000 - 1000);
    expect((await refresh(emulator, session)).status).toBe(400);
    emulator.advance(1000);
    expect((await refresh(emulator, session)).body).toHaveProperty('access_token');
    expect((await refresh(emulator, session)).status).toBe(400);
  });

  it('keeps 15 live access tokens per refresh token: the 16th invalidates the oldest', async () => {
    const session = await signIn(emulator);
    const accessTokens = [session.accessToken];
    for (let i = 0; i < 14; i++) {
      if (i === 10) emulator.advance(10 * MINUTE); // stay under the refresh throttle
      accessTokens.push(String((await refresh(emulator, session)).body.access_token));
    }
    for (const accessToken of accessTokens) expect((await currentUser(emulator, accessToken)).status).toBe(200);
    const sixteenth = String((await refresh(emulator, session)).body.access_token);
    expect((await currentUser(emulator, sixteenth)).status).toBe(200);
    expect((await currentUser(emulator, accessTokens[0])).body).toMatchObject({ code: 'INVALID_OAUTHTOKEN' });
    for (const accessToken of accessTokens.slice(1)) expect((await currentUser(emulator, accessToken)).status).toBe(200);
  });

  it('counts every one of many concurrent refreshes', async () => {
    const session = await signIn(emulator);
    const replies = await Promise.all(Array.from({ length: 12 }, () => refresh(emulator, session)));
    const accessTokens = replies.map((reply) => reply.body.access_token).filter(Boolean);
    expect(new Set(accessTokens).size).toBe(10);
    expect(replies.filter((reply) => reply.body.error === 'Access Denied')).toHaveLength(2);
    expect(emulator.counts()).toEqual({ tokenRequests: 13, codeExchanges: 1, refreshes: 10, revocations: 0, throttled: 2 });
  });
});

describe('revoke and the refresh token limit', () => {
  it('revokes a refresh token: it answers invalid_code and its access tokens get 401', async () => {
    const session = await signIn(emulator);
    const refreshed = String((await refresh(emulator, session)).body.access_token);
    const reply = await post(`${emulator.url}/oauth/v2/token/revoke`, { token: session.refreshToken });
    expect(reply).toEqual({ status: 200, body: { status: 'success' } });
    expect(await refresh(emulator, session)).toEqual({ status: 200, body: { error: 'invalid_code' } });
    expect((await currentUser(emulator, session.accessToken)).status).toBe(401);
    expect((await currentUser(emulator, refreshed)).status).toBe(401);
    expect(emulator.counts().revocations).toBe(1);
  });

  it('takes the token in the query string too, as Zoho documents it', async () => {
    const session = await signIn(emulator);
    const response = await fetch(`${emulator.url}/oauth/v2/token/revoke?token=${session.refreshToken}`, { method: 'POST' });
    expect(await response.json()).toEqual({ status: 'success' });
    expect((await refresh(emulator, session)).body).toEqual({ error: 'invalid_code' });
  });

  it('keeps 20 refresh tokens per user and client: the 21st invalidates the oldest', async () => {
    const client = emulator.registerClient({ redirectUri: REDIRECT_URI });
    const refreshTokens: string[] = [];
    for (let i = 0; i < 21; i++) {
      const code = emulator.issueGrantCode({ clientId: client.clientId, userEmail: 'ana@zylker.com' });
      refreshTokens.push(String((await exchange(code, client)).body.refresh_token));
    }
    expect((await refresh(emulator, { ...client, refreshToken: refreshTokens[0]! })).body).toEqual({ error: 'invalid_code' });
    expect((await refresh(emulator, { ...client, refreshToken: refreshTokens[1]! })).body).toHaveProperty('access_token');
    // Another user of the same client has a count of its own.
    const code = emulator.issueGrantCode({ clientId: client.clientId, userEmail: 'ben@zylker.com' });
    expect((await exchange(code, client)).body).toHaveProperty('refresh_token');
    expect((await refresh(emulator, { ...client, refreshToken: refreshTokens[1]! })).body).toHaveProperty('access_token');
  });
});
