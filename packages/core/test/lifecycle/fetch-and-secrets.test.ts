import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { OAuthError, OAuthToken, TokenManager, TokenStoreError, UserSignature } from '../../src/index';
import { HOUR, post, REDIRECT_URL, rejectionOf, type Setup, setup } from './helpers';

let env: Setup;
beforeEach(async () => {
  env = await setup();
});
afterEach(async () => {
  await env.close();
});

describe('fetch', () => {
  it('adds the Authorization header', async () => {
    await env.signIn();
    const response = await env.manager().fetch('ana@zylker.com', `${env.emulator.apiDomain}/crm/v8/users?type=CurrentUser`);
    expect(response.status).toBe(200);
    expect(((await response.json()) as { users: Array<{ email: string }> }).users[0]!.email).toBe('ana@zylker.com');
  });

  it('on 401 INVALID_OAUTHTOKEN refreshes once and retries once', async () => {
    const token = await env.signIn();
    // The access token is revoked before its time (the token itself still looks fresh).
    await post(`${env.emulator.url}/oauth/v2/token/revoke`, { token: token.accessToken as string });
    const manager = env.manager();
    const response = await manager.fetch(new UserSignature('ana@zylker.com'), `${env.emulator.apiDomain}/crm/v8/org`, {
      headers: { 'x-request': 'kept' },
    });
    expect(response.status).toBe(200);
    expect(env.emulator.counts().refreshes).toBe(1);
    const stored = (await env.store.findTokenById(token.id as string)) as OAuthToken;
    expect(stored.accessToken).not.toBe(token.accessToken);
  });

  it('a second 401 INVALID_OAUTHTOKEN after the refresh is NOT_AUTHORIZED; other statuses are returned as they are', async () => {
    await env.signIn();
    let seen = 0;
    const api = createServer((request, response) => {
      seen++;
      if (request.url === '/missing') response.writeHead(404, { 'content-type': 'application/json' }).end('{"code":"INVALID_URL_PATTERN"}');
      else response.writeHead(401, { 'content-type': 'application/json' }).end('{"code":"INVALID_OAUTHTOKEN","status":"error"}');
    });
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
    try {
      const manager = env.manager();
      const error = await rejectionOf(manager.fetch('ana@zylker.com', `${url}/crm/v8/Leads?secret=query-value`));
      expect(OAuthError.is(error) && [error.code, error.status, error.operation]).toEqual(['NOT_AUTHORIZED', 401, 'fetch']);
      expect((error as Error).message).not.toContain('query-value');
      expect(seen).toBe(2);
      expect(env.emulator.counts().refreshes).toBe(1);
      expect((await manager.fetch('ana@zylker.com', `${url}/missing`)).status).toBe(404);
    } finally {
      api.closeAllConnections();
      await new Promise((resolve) => api.close(resolve));
    }
  });
});

describe('secrets', () => {
  it('no secret in any error message, stack, cause or inspect output, nor in inspect(manager)', async () => {
    const clientSecret = 'manager-client-secret-0123456789';
    const token = await env.signIn();
    const secrets = [clientSecret, env.clientSecret, token.refreshToken as string, token.accessToken as string, token.grantToken as string];
    const errors: unknown[] = [];
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
      env.clock.advance(HOUR);
      // A timeout, an unreachable server, a wrong secret, a used grant token, a revoked refresh token.
      errors.push(await rejectionOf(env.manager({ accountsUrl: silentUrl, requestTimeoutMs: 100 }).getAccessToken('ana@zylker.com')));
      errors.push(await rejectionOf(env.manager({ accountsUrl: 'http://127.0.0.1:9' }).getAccessToken('ana@zylker.com')));
      await env.store.saveToken(
        new OAuthToken({ id: token.id, refreshToken: token.refreshToken, clientSecret: 'wrong-client-secret-0123456789' }),
      );
      secrets.push('wrong-client-secret-0123456789');
      errors.push(await rejectionOf(env.manager().getAccessToken('ana@zylker.com')));
      errors.push(
        await rejectionOf(
          env
            .manager({ clientId: env.clientId, clientSecret, redirectUrl: REDIRECT_URL })
            .getAccessToken(new OAuthToken({ grantToken: token.grantToken })),
        ),
      );
      const used = env.emulator.issueGrantCode({ clientId: env.clientId, userEmail: 'bo@zylker.com' });
      secrets.push(used);
      const direct = {
        grant_type: 'authorization_code',
        code: used,
        client_id: env.clientId,
        client_secret: env.clientSecret,
        redirect_uri: REDIRECT_URL,
      };
      secrets.push(String((await post(`${env.emulator.url}/oauth/v2/token`, direct)).refresh_token));
      const withCredentials = env.manager({ clientId: env.clientId, clientSecret: env.clientSecret, redirectUrl: REDIRECT_URL });
      errors.push(await rejectionOf(withCredentials.getAccessToken(new OAuthToken({ grantToken: used }))));
      await post(`${env.emulator.url}/oauth/v2/token/revoke`, { token: token.refreshToken as string });
      await env.store.saveToken(new OAuthToken({ id: token.id, refreshToken: token.refreshToken, clientSecret: env.clientSecret }));
      errors.push(await rejectionOf(env.manager().getAccessToken('ana@zylker.com')));
      const malformed = new OAuthToken({ refreshToken: token.refreshToken });
      (malformed as unknown as Record<string, unknown>).clientId = 1;
      errors.push(await rejectionOf(env.manager().getAccessToken(malformed)));
    } finally {
      silent.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
    }
    expect(errors.map((error) => (OAuthError.is(error) || TokenStoreError.is(error) ? error.code : String(error)))).toEqual([
      'NETWORK',
      'NETWORK',
      'INVALID_CLIENT',
      'INVALID_CLIENT',
      'INVALID_GRANT',
      'INVALID_GRANT',
      'INVALID_ARGUMENT',
    ]);
    const manager = new TokenManager({ store: env.store, accountsUrl: env.emulator.url, clientId: env.clientId, clientSecret });
    const shown = [
      ...errors.flatMap((error) => [String(error), (error as Error).stack ?? '', inspect(error, { showHidden: true, depth: 10 })]),
      inspect(manager, { showHidden: true, depth: 10 }),
      String(manager),
      JSON.stringify(manager),
    ].join('\n');
    for (const secret of secrets) expect(shown).not.toContain(secret);
    expect(inspect(manager)).toContain('TokenManager');
  });
});
