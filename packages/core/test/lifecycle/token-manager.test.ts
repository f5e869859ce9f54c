import { accountsUrlFor, DATA_CENTERS, OAuthError, OAuthToken, TokenManager, TokenStoreError, UserSignature } from '../../src/index';
import { HOUR, post, REDIRECT_URL, rejectionOf, type Setup, setup } from './helpers';

let env: Setup;
beforeEach(async () => {
  env = await setup();
});
afterEach(async () => {
  await env.close();
});

describe('grant token exchange', () => {
  it('exchanges a stored grant token once, names the token after the current user and saves it', async () => {
    const grant = await env.storeGrant('ana@zylker.com');
    const manager = env.manager();
    const accessToken = await manager.getAccessToken(grant);
    expect(accessToken).toMatch(/^1000\./);
    const stored = (await env.store.findTokenById(grant.id as string)) as OAuthToken;
    expect(stored.accessToken).toBe(accessToken);
    expect(stored.refreshToken).toMatch(/^1000\./);
    expect(stored.userName).toBe('ana@zylker.com');
    expect(stored.expiryTime).toBe(env.clock.time + HOUR);
    expect(stored.apiDomain).toBe(env.emulator.apiDomain);
    expect(env.emulator.counts().codeExchanges).toBe(1);
    // Now found by user name, without any HTTP.
    expect(await manager.getAccessToken('ana@zylker.com')).toBe(accessToken);
    expect(env.emulator.counts().tokenRequests).toBe(1);
  });

  it('exchanges a grant token once for many concurrent callers', async () => {
    const grant = await env.storeGrant();
    const manager = env.manager();
    const tokens = await Promise.all(Array.from({ length: 20 }, () => manager.getAccessToken(grant.clone())));
    expect(new Set(tokens).size).toBe(1);
    expect(env.emulator.counts().tokenRequests).toBe(1);
  });
});

describe('fresh and stale tokens', () => {
  it('returns a fresh token with no HTTP request', async () => {
    const token = await env.signIn();
    const before = env.emulator.counts().tokenRequests;
    const manager = env.manager();
    expect(await manager.getAccessToken('ana@zylker.com')).toBe(token.accessToken);
    expect(await manager.getAccessToken(new UserSignature('ana@zylker.com'))).toBe(token.accessToken);
    expect(await manager.authorizationHeader('ana@zylker.com')).toBe(`Zoho-oauthtoken ${token.accessToken}`);
    expect(env.emulator.counts().tokenRequests).toBe(before);
  });

  it('refreshes when the token is within the margin of its expiry, and saves the new one', async () => {
    const token = await env.signIn();
    env.clock.advance(HOUR - 4000); // 4 s left, inside the 5 s margin
    const manager = env.manager();
    const accessToken = await manager.getAccessToken('ana@zylker.com');
    expect(accessToken).not.toBe(token.accessToken);
    expect(env.emulator.counts().refreshes).toBe(1);
    const stored = (await env.store.findTokenById(token.id as string)) as OAuthToken;
    expect(stored.accessToken).toBe(accessToken);
    expect(stored.refreshToken).toBe(token.refreshToken);
    expect(stored.expiryTime).toBe(env.clock.time + HOUR);
  });

  it('100 concurrent callers in one process share exactly one refresh', async () => {
    await env.signIn();
    env.clock.advance(HOUR);
    const manager = env.manager();
    const tokens = await Promise.all(Array.from({ length: 100 }, () => manager.getAccessToken('ana@zylker.com')));
    expect(new Set(tokens).size).toBe(1);
    expect(env.emulator.counts().refreshes).toBe(1);
  });

  it('an unknown user is NO_TOKEN', async () => {
    const error = await env
      .manager()
      .getAccessToken('nobody@zylker.com')
      .catch((caught: unknown) => caught);
    expect(OAuthError.is(error) && error.code).toBe('NO_TOKEN');
  });

  it('bad arguments are INVALID_ARGUMENT and send nothing', async () => {
    const manager = env.manager();
    for (const bad of ['', 42, null, {}, undefined]) {
      const error = await manager.getAccessToken(bad as never).catch((caught: unknown) => caught);
      expect(TokenStoreError.is(error) && error.code).toBe('INVALID_ARGUMENT');
    }
    expect(env.emulator.counts().tokenRequests).toBe(0);
  });
});

describe('grant token failures and first use', () => {
  it('a used grant token is INVALID_GRANT, and the stored token is unchanged', async () => {
    const grant = await env.storeGrant();
    // Someone exchanges it first, outside this store.
    const reply = await post(`${env.emulator.url}/oauth/v2/token`, {
      grant_type: 'authorization_code',
      code: grant.grantToken as string,
      client_id: env.clientId,
      client_secret: env.clientSecret,
      redirect_uri: REDIRECT_URL,
    });
    expect(reply.access_token).toBeDefined();
    const error = await rejectionOf(env.manager().getAccessToken(grant));
    expect(OAuthError.is(error) && [error.code, error.accountsError, error.operation]).toEqual([
      'INVALID_GRANT',
      'invalid_code',
      'exchangeGrantToken',
    ]);
    const stored = (await env.store.findTokenById(grant.id as string)) as OAuthToken;
    expect(stored.refreshToken).toBeNull();
    expect(stored.accessToken).toBeNull();
  });

  it('a grant token given by the caller and not stored yet is exchanged and stored, with the manager credentials', async () => {
    const manager = env.manager({ clientId: env.clientId, clientSecret: env.clientSecret, redirectUrl: REDIRECT_URL });
    const grantToken = env.emulator.issueGrantCode({ clientId: env.clientId, userEmail: 'bo@zylker.com' });
    const accessToken = await manager.getAccessToken(new OAuthToken({ grantToken }));
    const stored = (await env.store.findToken(new OAuthToken({ userSignature: new UserSignature('bo@zylker.com') }))) as OAuthToken;
    expect(stored.accessToken).toBe(accessToken);
    expect(stored.clientId).toBe(env.clientId);
    // Asking again with the same grant token finds the stored token: no second exchange.
    expect(await manager.getAccessToken(new OAuthToken({ grantToken }))).toBe(accessToken);
    expect(env.emulator.counts().tokenRequests).toBe(1);
  });

  it('a grant token without client credentials anywhere is MISSING_CLIENT_CREDENTIALS, before any request', async () => {
    const grantToken = env.emulator.issueGrantCode({ clientId: env.clientId, userEmail: 'bo@zylker.com' });
    const error = await rejectionOf(
      env.manager().getAccessToken(new OAuthToken({ grantToken, userSignature: new UserSignature('bo@zylker.com') })),
    );
    expect(OAuthError.is(error) && error.code).toBe('MISSING_CLIENT_CREDENTIALS');
    expect(env.emulator.counts().tokenRequests).toBe(0);
  });

  it('a user who authorises the app again: the new grant replaces the tokens of the stored user', async () => {
    const first = await env.signIn('ana@zylker.com');
    const grant = await env.storeGrant('ana@zylker.com');
    const accessToken = await env.manager().getAccessToken(grant);
    const tokens = await env.store.getTokens();
    expect(tokens).toHaveLength(1);
    expect(tokens[0]!.id).toBe(first.id);
    expect(tokens[0]!.accessToken).toBe(accessToken);
    expect(tokens[0]!.refreshToken).not.toBe(first.refreshToken);
  });

  it('a refresh token given by the caller and not stored yet is refreshed and stored', async () => {
    const token = await env.signIn();
    await env.store.deleteTokens();
    const manager = env.manager({ clientId: env.clientId, clientSecret: env.clientSecret });
    const accessToken = await manager.getAccessToken(new OAuthToken({ refreshToken: token.refreshToken }));
    expect(env.emulator.counts().refreshes).toBe(1);
    const [stored] = await env.store.getTokens();
    expect(stored!.accessToken).toBe(accessToken);
    expect(stored!.refreshToken).toBe(token.refreshToken);
  });

  it('an expired token without refresh token is NO_REFRESH_TOKEN', async () => {
    await env.store.saveToken(
      new OAuthToken({ userSignature: new UserSignature('cy@zylker.com'), accessToken: '1000.abc', expiryTime: env.clock.time - 1 }),
    );
    const error = await rejectionOf(env.manager().getAccessToken('cy@zylker.com'));
    expect(OAuthError.is(error) && error.code).toBe('NO_REFRESH_TOKEN');
  });
});

describe('revoke', () => {
  it('revokes the refresh token at the accounts server, then deletes the token', async () => {
    const token = await env.signIn();
    await env.manager().revoke(token.id as string);
    expect(env.emulator.counts().revocations).toBe(1);
    expect(await env.store.findTokenById(token.id as string)).toBeNull();
    // The refresh token no longer works at the accounts server.
    const reply = await post(`${env.emulator.url}/oauth/v2/token`, {
      grant_type: 'refresh_token',
      refresh_token: token.refreshToken as string,
      client_id: env.clientId,
      client_secret: env.clientSecret,
    });
    expect(reply.error).toBe('invalid_code');
  });

  it('an unknown id is NO_TOKEN, a bad one INVALID_ARGUMENT; nothing is sent', async () => {
    const manager = env.manager();
    const unknown = await rejectionOf(manager.revoke('nope'));
    expect(OAuthError.is(unknown) && [unknown.code, unknown.operation]).toEqual(['NO_TOKEN', 'revoke']);
    const bad = await rejectionOf(manager.revoke(42 as never));
    expect(TokenStoreError.is(bad) && bad.code).toBe('INVALID_ARGUMENT');
    expect(env.emulator.counts().revocations).toBe(0);
  });

  it('a refresh after a revocation elsewhere is INVALID_GRANT', async () => {
    const token = await env.signIn();
    await post(`${env.emulator.url}/oauth/v2/token/revoke`, { token: token.refreshToken as string });
    env.clock.advance(HOUR);
    const error = await rejectionOf(env.manager().getAccessToken('ana@zylker.com'));
    expect(OAuthError.is(error) && [error.code, error.operation]).toEqual(['INVALID_GRANT', 'refreshAccessToken']);
  });
});

describe('options', () => {
  it('refuses bad options up front with INVALID_ARGUMENT', () => {
    const bad: Array<Record<string, unknown>> = [
      {},
      { store: {} },
      { store: env.store, dataCenter: 'MOON' },
      { store: env.store, accountsUrl: 'ftp://accounts.example.com' },
      { store: env.store, accountsUrl: 'https://user:pw@accounts.example.com' },
      { store: env.store, accountsUrl: 'https://accounts.example.com/?x=1' },
      { store: env.store, expiryMarginMs: -1 },
      { store: env.store, requestTimeoutMs: 0 },
      { store: env.store, throttleCooldownMs: 1.5 },
      { store: env.store, lock: { leaseMs: 10 } },
      { store: env.store, lock: { waitMs: -1 } },
      { store: env.store, lock: { wait: 1 } },
      { store: env.store, clientSecret: 42 },
      { store: env.store, fetch: 'no' },
      { store: env.store, clock: 1 },
      { store: env.store, accountUrl: 'https://accounts.example.com' },
    ];
    for (const options of bad) {
      let error: unknown = null;
      try {
        new TokenManager(options as never);
      } catch (caught) {
        error = caught;
      }
      expect(TokenStoreError.is(error) && [error.code, error.store]).toEqual(['INVALID_ARGUMENT', 'TokenManager']);
    }
    expect(() => new TokenManager(null as never)).toThrow(TokenStoreError);
  });

  it('picks the accounts server of the data center, and accountsUrl overrides it', () => {
    expect(new TokenManager({ store: env.store }).accountsUrl).toBe('https://accounts.zoho.com');
    expect(new TokenManager({ store: env.store, dataCenter: 'CA' }).accountsUrl).toBe('https://accounts.zohocloud.ca');
    expect(new TokenManager({ store: env.store, dataCenter: 'EU', accountsUrl: `${env.emulator.url}/` }).accountsUrl).toBe(
      env.emulator.url,
    );
    expect(accountsUrlFor('CN')).toBe('https://accounts.zoho.com.cn');
    expect(Object.keys(DATA_CENTERS)).toEqual(['US', 'EU', 'IN', 'CN', 'JP', 'AU', 'CA', 'SA', 'UK']);
    expect(DATA_CENTERS.SA).toEqual({ accountsUrl: 'https://accounts.zoho.sa', apiDomain: 'https://www.zohoapis.sa' });
  });
});
