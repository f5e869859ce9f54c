import { OAuthError, OAuthToken, TokenStoreError, UserSignature } from '../../src/index';
import { HOUR, type Setup, setup } from './helpers';

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
    const error = await env.manager().getAccessToken('nobody@zylker.com').catch((caught: unknown) => caught);
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
