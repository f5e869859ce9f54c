import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startAccountsEmulator } from '@crm/accounts-emulator';
import { AccountsClient, OAuthError, TokenStoreError } from '../../src/index';
import { HOUR, REDIRECT_URL, rejectionOf, TestClock } from './helpers';

/** A tiny loopback server answering every request with `handler` (or never, when it returns nothing). */
async function server(handler: (body: string, url: string) => { status: number; body: string; headers?: Record<string, string> } | null) {
  const bodies: string[] = [];
  const urls: string[] = [];
  const http: Server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      bodies.push(body);
      urls.push(request.url ?? '');
      const reply = handler(body, request.url ?? '');
      if (reply === null) return; // never answers
      response.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers }).end(reply.body);
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    bodies,
    urls,
    close: () =>
      new Promise<void>((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
}

const credentials = { clientId: '1000.CLIENT', clientSecret: 'client-secret-value-0123456789' };
const refreshToken = '1000.0123456789abcdef0123456789abcdef.0123456789abcdef0123456789abcdef';

it('exchanges and refreshes against the emulator; expiryTime = now + expires_in (seconds)', async () => {
  const clock = new TestClock();
  const emulator = await startAccountsEmulator({ clock: clock.now });
  try {
    const { clientId, clientSecret } = emulator.registerClient({ redirectUri: REDIRECT_URL });
    const client = new AccountsClient({ accountsUrl: emulator.url, clock: clock.now });
    const code = emulator.issueGrantCode({ clientId, userEmail: 'ana@zylker.com' });
    const exchanged = await client.exchangeGrantToken({ code, clientId, clientSecret, redirectUrl: REDIRECT_URL });
    expect(exchanged).toMatchObject({
      apiDomain: emulator.apiDomain,
      tokenType: 'Bearer',
      expiresInMs: HOUR,
      expiryTime: clock.time + HOUR,
    });
    expect(exchanged.refreshToken).toMatch(/^1000\./);
    const refreshed = await client.refreshAccessToken({ refreshToken: exchanged.refreshToken as string, clientId, clientSecret });
    expect(refreshed.refreshToken).toBeNull();
    expect(refreshed.accessToken).not.toBe(exchanged.accessToken);
    expect(await client.currentUserEmail(emulator.apiDomain, refreshed.accessToken)).toBe('ana@zylker.com');
    // HTTP 200 error bodies are errors.
    const wrongSecret = await rejectionOf(
      client.refreshAccessToken({ refreshToken: exchanged.refreshToken as string, clientId, clientSecret: 'wrong-secret' }),
    );
    expect(OAuthError.is(wrongSecret) && [wrongSecret.code, wrongSecret.status, wrongSecret.accountsError]).toEqual([
      'INVALID_CLIENT',
      200,
      'invalid_client',
    ]);
    const wrongRedirect = await rejectionOf(
      client.exchangeGrantToken({
        code: emulator.issueGrantCode({ clientId, userEmail: 'a@b.c' }),
        clientId,
        clientSecret,
        redirectUrl: 'https://elsewhere.example.com',
      }),
    );
    expect(OAuthError.is(wrongRedirect) && wrongRedirect.code).toBe('INVALID_REDIRECT_URI');
    await client.revokeToken(exchanged.refreshToken as string);
    expect(emulator.counts().revocations).toBe(1);
    const revoked = await rejectionOf(
      client.refreshAccessToken({ refreshToken: exchanged.refreshToken as string, clientId, clientSecret }),
    );
    expect(OAuthError.is(revoked) && revoked.code).toBe('INVALID_GRANT');
  } finally {
    await emulator.close();
  }
});

it('reads expires_in as milliseconds when the reply also has expires_in_sec', async () => {
  const clock = new TestClock();
  const emulator = await startAccountsEmulator({ clock: clock.now, expiresInMilliseconds: true });
  try {
    const { clientId, clientSecret } = emulator.registerClient({ redirectUri: REDIRECT_URL });
    const client = new AccountsClient({ accountsUrl: emulator.url, clock: clock.now });
    const code = emulator.issueGrantCode({ clientId, userEmail: 'ana@zylker.com' });
    const exchanged = await client.exchangeGrantToken({ code, clientId, clientSecret, redirectUrl: REDIRECT_URL });
    expect(exchanged.expiresInMs).toBe(HOUR);
    expect(exchanged.expiryTime).toBe(clock.time + HOUR);
  } finally {
    await emulator.close();
  }
});

it('sends form bodies, never secrets in the query string', async () => {
  const fake = await server(() => ({ status: 200, body: JSON.stringify({ access_token: 'a', expires_in: 3600 }) }));
  try {
    const client = new AccountsClient({ accountsUrl: fake.url });
    await client.refreshAccessToken({ refreshToken, ...credentials });
    expect(fake.urls).toEqual(['/oauth/v2/token']);
    expect(new URLSearchParams(fake.bodies[0]).get('refresh_token')).toBe(refreshToken);
    expect(new URLSearchParams(fake.bodies[0]).get('grant_type')).toBe('refresh_token');
  } finally {
    await fake.close();
  }
});

it('a server that never answers is NETWORK after requestTimeoutMs; an unreachable one is NETWORK', async () => {
  const silent = await server(() => null);
  try {
    const client = new AccountsClient({ accountsUrl: silent.url, requestTimeoutMs: 200 });
    const error = await rejectionOf(client.refreshAccessToken({ refreshToken, ...credentials }));
    expect(OAuthError.is(error) && [error.code, error.operation]).toEqual(['NETWORK', 'refreshAccessToken']);
    expect((error as Error).message).toContain('200 ms');
  } finally {
    await silent.close();
  }
  const closed = await server(() => null);
  await closed.close();
  const unreachable = await rejectionOf(new AccountsClient({ accountsUrl: closed.url }).revokeToken(refreshToken));
  expect(OAuthError.is(unreachable) && unreachable.code).toBe('NETWORK');
});

it("the caller's signal aborts a request: ABORTED", async () => {
  const silent = await server(() => null);
  try {
    const controller = new AbortController();
    const pending = new AccountsClient({ accountsUrl: silent.url }).refreshAccessToken(
      { refreshToken, ...credentials },
      { signal: controller.signal },
    );
    setTimeout(() => controller.abort(), 50);
    const error = await rejectionOf(pending);
    expect(OAuthError.is(error) && error.code).toBe('ABORTED');
  } finally {
    await silent.close();
  }
});

it('maps throttling, server errors and replies that are not Zoho replies', async () => {
  const replies: Array<{ status: number; body: string; headers?: Record<string, string> }> = [
    { status: 400, body: JSON.stringify({ error: 'Access Denied', error_description: 'You have made too many requests continuously.' }) },
    {
      status: 200,
      body: JSON.stringify({ error: 'Access Denied', error_description: 'too many requests' }),
      headers: { 'retry-after': '7' },
    },
    { status: 429, body: 'slow down' },
    { status: 503, body: '<html>busy</html>' },
    { status: 200, body: 'not json' },
    { status: 200, body: JSON.stringify({ access_token: 'a' }) },
    { status: 200, body: JSON.stringify({ expires_in: 3600 }) },
    { status: 200, body: JSON.stringify({ access_token: 'a', expires_in: 3600, api_domain: 'javascript:alert(1)' }) },
    { status: 200, body: JSON.stringify({ access_token: 'a', expires_in: 1e306 }) },
    { status: 200, body: JSON.stringify({ access_token: 'a', expires_in: 1e16 }) },
    { status: 302, body: '', headers: { location: 'https://elsewhere.example.com/' } },
    { status: 200, body: JSON.stringify({ error: 'some_new_error' }) },
  ];
  let next = 0;
  const fake = await server(() => replies[next++]!);
  try {
    const client = new AccountsClient({ accountsUrl: fake.url });
    const outcomes: unknown[] = [];
    for (let index = 0; index < replies.length; index++) {
      const error = await rejectionOf(client.refreshAccessToken({ refreshToken, ...credentials }));
      outcomes.push(OAuthError.is(error) ? [error.code, error.retryAfterMs] : String(error));
    }
    expect(outcomes).toEqual([
      ['THROTTLED', null],
      ['THROTTLED', 7000],
      ['THROTTLED', null],
      ['SERVER_ERROR', null],
      ['INVALID_RESPONSE', null],
      ['INVALID_RESPONSE', null],
      ['INVALID_RESPONSE', null],
      ['INVALID_RESPONSE', null],
      ['INVALID_RESPONSE', null], // expires_in of 1e306 seconds
      ['INVALID_RESPONSE', null], // 1e16 seconds: past the last date a token can hold
      ['INVALID_RESPONSE', null],
      ['ACCOUNTS_ERROR', null],
    ]);
  } finally {
    await fake.close();
  }
});

it('refuses bad options and arguments with INVALID_ARGUMENT', async () => {
  for (const options of [{ accountsUrl: 'nope' }, { dataCenter: 'XX' }, { requestTimeoutMs: 0 }, { fetch: 1 }, { other: 1 }]) {
    expect(() => new AccountsClient(options as never)).toThrow(TokenStoreError);
  }
  expect(new AccountsClient({ dataCenter: 'JP' }).accountsUrl).toBe('https://accounts.zoho.jp');
  const client = new AccountsClient({ accountsUrl: 'http://127.0.0.1:9' });
  const error = await rejectionOf(client.refreshAccessToken({ refreshToken: '', ...credentials }));
  expect(TokenStoreError.is(error) && error.code).toBe('INVALID_ARGUMENT');
});
