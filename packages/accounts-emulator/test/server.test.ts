import { request } from 'node:http';
import { type AccountsEmulator, startAccountsEmulator } from '../src/index.js';
import { currentUser, REDIRECT_URI, refresh, signIn } from './helpers.js';

/** Listening sockets in this process, counted once the handles closed just before have been released (a loop turn later). */
async function serverHandles(): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 20));
  return process.getActiveResourcesInfo().filter((name) => name === 'TCPServerWrap').length;
}

describe('the server', () => {
  let emulator: AccountsEmulator;
  beforeAll(async () => {
    emulator = await startAccountsEmulator();
  });
  afterAll(() => emulator.close());

  it('listens on 127.0.0.1', () => {
    expect(emulator.url).toBe(`http://127.0.0.1:${emulator.port}`);
  });

  it('answers 404 for an unknown path and 405 for a wrong method', async () => {
    const missing = await fetch(`${emulator.url}/oauth/v3/token`, { method: 'POST' });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: 'INVALID_URL_PATTERN' });
    const wrongMethod = await fetch(`${emulator.url}/oauth/v2/token`);
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('POST');
    await wrongMethod.json();
    expect((await fetch(`${emulator.url}/crm/v8/users?type=CurrentUser`, { method: 'DELETE' })).status).toBe(405);
  });

  it('replies with an error, never a crash, to malformed bodies', async () => {
    const token = `${emulator.url}/oauth/v2/token`;
    const json = await fetch(token, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"grant_type":' });
    expect(await json.json()).toEqual({ error: 'invalid_request' });
    const badEncoding = await fetch(token, { method: 'POST', body: 'grant_type=%E0%A4%A&client_id=%%%' });
    expect(await badEncoding.json()).toEqual({ error: 'unsupported_grant_type' });
    const huge = await fetch(token, { method: 'POST', body: `grant_type=refresh_token&x=${'a'.repeat(200_000)}` });
    expect(huge.status).toBe(413);
    await huge.json();
    const noToken = await fetch(`${emulator.url}/oauth/v2/token/revoke`, { method: 'POST' });
    expect(await noToken.json()).toEqual({ error: 'invalid_request' });
    // Still serving.
    expect((await signIn(emulator)).accessToken).toMatch(/^1000\./);
  });

  it('survives a client that hangs up mid-body', async () => {
    await new Promise<void>((resolve) => {
      const req = request(`${emulator.url}/oauth/v2/token`, { method: 'POST', headers: { 'content-length': '1000' } });
      req.on('error', () => resolve());
      req.write('grant_type=refresh');
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 50);
    });
    expect((await signIn(emulator)).accessToken).toMatch(/^1000\./);
  });

  it('answers AUTHENTICATION_FAILURE without a Zoho-oauthtoken header, INVALID_DATA for another user type', async () => {
    const users = await fetch(`${emulator.url}/crm/v8/users?type=CurrentUser`, { headers: { Authorization: 'Bearer x' } });
    expect(users.status).toBe(401);
    expect(await users.json()).toMatchObject({ code: 'AUTHENTICATION_FAILURE' });
    const session = await signIn(emulator);
    const allUsers = await fetch(`${emulator.url}/crm/v8/users?type=AllUsers`, {
      headers: { Authorization: `Zoho-oauthtoken ${session.accessToken}` },
    });
    expect(allUsers.status).toBe(400);
    expect(await allUsers.json()).toMatchObject({ code: 'INVALID_DATA' });
  });

  it('refuses registerClient without a redirect URI and issueGrantCode for an unknown client', () => {
    expect(() => emulator.registerClient({} as { redirectUri: string })).toThrow(TypeError);
    expect(() => emulator.issueGrantCode({ clientId: '1000.NOPE', userEmail: 'ana@zylker.com' })).toThrow(/unknown client/);
    const client = emulator.registerClient({ clientId: '1000.FIXED', clientSecret: 'fixed-secret', redirectUri: REDIRECT_URI });
    expect(client).toEqual({ clientId: '1000.FIXED', clientSecret: 'fixed-secret' });
    expect(() => emulator.registerClient({ clientId: '1000.FIXED', redirectUri: REDIRECT_URI })).toThrow(/already/);
  });
});

describe('options', () => {
  it('uses an injected clock, and advance() then refuses', async () => {
    let now = Date.parse('2026-01-01T00:00:00Z');
    const emulator = await startAccountsEmulator({ clock: () => now, apiDomain: 'https://www.zohoapis.eu' });
    try {
      expect(emulator.apiDomain).toBe('https://www.zohoapis.eu');
      const session = await signIn(emulator);
      expect(() => emulator.advance(1000)).toThrow(/built-in clock/);
      now += 3_600_000;
      const local = { ...emulator, apiDomain: emulator.url };
      expect((await currentUser(local, session.accessToken)).status).toBe(401);
      expect((await refresh(emulator, session)).body).toMatchObject({ api_domain: 'https://www.zohoapis.eu' });
    } finally {
      await emulator.close();
    }
  });

  it('logs nothing unless given a log function, and then no query strings', async () => {
    const lines: string[] = [];
    const emulator = await startAccountsEmulator({ log: (line) => lines.push(line) });
    try {
      const session = await signIn(emulator);
      await fetch(`${emulator.url}/oauth/v2/token/revoke?token=${session.refreshToken}`, { method: 'POST' }).then((reply) => reply.json());
      expect(lines).toEqual(['POST /oauth/v2/token 200', 'POST /oauth/v2/token/revoke 200']);
      const throwing = await startAccountsEmulator({
        log: () => {
          throw new Error('log failed');
        },
      });
      try {
        expect((await fetch(`${throwing.url}/nowhere`)).status).toBe(404);
        expect((await signIn(throwing)).accessToken).toMatch(/^1000\./);
      } finally {
        await throwing.close();
      }
    } finally {
      await emulator.close();
    }
  });
});

describe('close()', () => {
  it('frees the port, even with keep-alive connections open, and leaves no server handle', async () => {
    const before = await serverHandles();
    const emulator = await startAccountsEmulator();
    expect(await serverHandles()).toBe(before + 1);
    await signIn(emulator); // the platform fetch keeps this connection alive
    await emulator.close();
    expect(await serverHandles()).toBe(before);
    await expect(fetch(`${emulator.url}/oauth/v2/token`, { method: 'POST' })).rejects.toThrow();
    const again = await startAccountsEmulator({ port: emulator.port });
    expect(again.port).toBe(emulator.port);
    await again.close();
    await again.close(); // a second close() is harmless
    expect(await serverHandles()).toBe(before);
  });

  it('rejects start on a port in use', async () => {
    const first = await startAccountsEmulator();
    try {
      await expect(startAccountsEmulator({ port: first.port })).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await first.close();
    }
  });
});
