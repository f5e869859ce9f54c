import { type AccountsEmulator, type AccountsEmulatorOptions, startAccountsEmulator } from '@crm/accounts-emulator';
import {
  authorizationUrl,
  createPkce,
  MemoryTokenStore,
  OAuthError,
  pkceChallenge,
  randomState,
  TokenManager,
  TokenStoreError,
} from '../../src/index';
import { REDIRECT_URL, rejectionOf } from './helpers';

/** Walks the emulator's consent page as a browser would and returns the query the redirect URI receives. */
async function consent(url: string, email: string): Promise<URLSearchParams> {
  const page = await fetch(url, { redirect: 'manual' });
  const html = await page.text();
  expect(page.status).toBe(200);
  const nonce = /name="consent" value="([^"]+)"/.exec(html)?.[1] as string;
  const cookie = (page.headers.get('set-cookie') ?? '').split(';')[0] as string;
  const answer = await fetch(new URL('/oauth/v2/auth/consent', url), {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie },
    body: new URLSearchParams({ consent: nonce, email, decision: 'accept' }),
  });
  expect(answer.status).toBe(302);
  return new URL(answer.headers.get('location') as string).searchParams;
}

describe('authorizationUrl', () => {
  it("builds Zoho's authorisation URL for a data center or an accounts URL", () => {
    const url = new URL(
      authorizationUrl({
        dataCenter: 'EU',
        clientId: '1000.ABC',
        redirectUrl: REDIRECT_URL,
        scope: ['ZohoCRM.users.READ', 'ZohoCRM.modules.ALL'],
        state: 'st',
      }),
    );
    expect(`${url.origin}${url.pathname}`).toBe('https://accounts.zoho.eu/oauth/v2/auth');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      response_type: 'code',
      client_id: '1000.ABC',
      scope: 'ZohoCRM.users.READ,ZohoCRM.modules.ALL',
      redirect_uri: REDIRECT_URL,
      state: 'st',
      access_type: 'offline',
      prompt: 'consent',
    });
    const { codeChallenge } = createPkce();
    const withPkce = new URL(
      authorizationUrl({
        accountsUrl: 'http://127.0.0.1:9/',
        clientId: 'c',
        redirectUrl: REDIRECT_URL,
        scope: 'ZohoCRM.users.READ',
        state: 's',
        codeChallenge,
        accessType: 'online',
        prompt: null,
      }),
    );
    expect(withPkce.origin).toBe('http://127.0.0.1:9');
    expect(withPkce.searchParams.get('code_challenge')).toBe(codeChallenge);
    expect(withPkce.searchParams.get('code_challenge_method')).toBe('S256');
    expect(withPkce.searchParams.get('access_type')).toBe('online');
    expect(withPkce.searchParams.has('prompt')).toBe(false);
  });

  it('refuses bad input with INVALID_ARGUMENT', () => {
    const base = { clientId: 'c', redirectUrl: REDIRECT_URL, scope: 'ZohoCRM.users.READ', state: 's' };
    const bad = [
      { ...base, clientId: '' },
      { ...base, state: '' },
      { ...base, scope: [] },
      { ...base, dataCenter: 'XX' },
      { ...base, accountsUrl: 'ftp://x' },
      { ...base, codeChallenge: 'plain-verifier' },
      { ...base, accessType: 'always' },
    ];
    for (const input of bad) {
      let error: unknown;
      try {
        authorizationUrl(input as never);
      } catch (thrown) {
        error = thrown;
      }
      expect(TokenStoreError.is(error) && error.code).toBe('INVALID_ARGUMENT');
    }
  });

  it('createPkce gives an RFC 7636 pair; randomState differs each time', () => {
    // The example of RFC 7636, appendix B.
    expect(pkceChallenge('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM');
    const { codeVerifier, codeChallenge } = createPkce();
    expect(codeVerifier).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(pkceChallenge(codeVerifier)).toBe(codeChallenge);
    expect(randomState()).not.toBe(randomState());
    expect(() => pkceChallenge('short')).toThrow(TokenStoreError);
  });
});

type SignIn = { emulator: AccountsEmulator; clientId: string; clientSecret: string; store: MemoryTokenStore; manager: TokenManager };

/** An accounts emulator with one client for REDIRECT_URL, a memory store and a TokenManager on both; the emulator is closed after `use`. */
async function withSignIn(use: (signIn: SignIn) => Promise<void>, options?: AccountsEmulatorOptions): Promise<void> {
  const emulator = await startAccountsEmulator(options);
  try {
    const { clientId, clientSecret } = emulator.registerClient({ redirectUri: REDIRECT_URL });
    const store = new MemoryTokenStore();
    const manager = new TokenManager({ store, accountsUrl: emulator.url, clientId, clientSecret, redirectUrl: REDIRECT_URL });
    await use({ emulator, clientId, clientSecret, store, manager });
  } finally {
    await emulator.close();
  }
}

describe('TokenManager.exchangeCode', () => {
  it('signs a user in through the consent page with PKCE, names and saves the token; signing in again keeps one token', () =>
    withSignIn(async ({ emulator, clientId, store, manager }) => {
      const signIn = async () => {
        const { codeVerifier, codeChallenge } = createPkce();
        const state = randomState();
        const url = authorizationUrl({
          accountsUrl: emulator.url,
          clientId,
          redirectUrl: REDIRECT_URL,
          scope: 'ZohoCRM.users.READ',
          state,
          codeChallenge,
        });
        const back = await consent(url, 'ana@zylker.com');
        expect(back.get('state')).toBe(state);
        return manager.exchangeCode({ code: back.get('code') as string, codeVerifier });
      };
      const first = await signIn();
      expect(first.userSignature?.name).toBe('ana@zylker.com');
      expect(first.refreshToken).toMatch(/^1000\./);
      expect(await manager.getAccessToken('ana@zylker.com')).toBe(first.accessToken);
      const second = await signIn();
      const stored = await store.getTokens();
      expect(stored).toHaveLength(1);
      expect(stored[0]?.id).toBe(first.id);
      expect(stored[0]?.refreshToken).toBe(second.refreshToken);
      expect(second.refreshToken).not.toBe(first.refreshToken);
      expect(emulator.counts().codeExchanges).toBe(2);
    }));

  it('fails INVALID_GRANT without the verifier, and keeps the verifier out of the error', () =>
    withSignIn(async ({ emulator, clientId, store, manager }) => {
      const { codeVerifier, codeChallenge } = createPkce();
      const code = emulator.issueGrantCode({ clientId, userEmail: 'ana@zylker.com', redirectUri: REDIRECT_URL, codeChallenge });
      const missing = await rejectionOf(manager.exchangeCode({ code }));
      expect(OAuthError.is(missing) && missing.code).toBe('INVALID_GRANT');
      const other = emulator.issueGrantCode({ clientId, userEmail: 'ana@zylker.com', redirectUri: REDIRECT_URL, codeChallenge });
      const wrong = await rejectionOf(manager.exchangeCode({ code: other, codeVerifier: createPkce().codeVerifier }));
      expect(OAuthError.is(wrong) && wrong.code).toBe('INVALID_GRANT');
      expect(JSON.stringify([String(wrong), (wrong as Error).stack])).not.toContain(codeVerifier);
      expect(await store.getTokens()).toEqual([]);
      const bad = await rejectionOf(manager.exchangeCode({ code: '', codeVerifier }));
      expect(TokenStoreError.is(bad) && bad.code).toBe('INVALID_ARGUMENT');
      expect(TokenStoreError.is(bad) && bad.operation).toBe('exchangeCode');
    }));

  it('never answers a replayed code from the store: with a wrong verifier, none or the right one, the accounts server refuses it', () =>
    withSignIn(async ({ emulator, clientId, store, manager }) => {
      const { codeVerifier, codeChallenge } = createPkce();
      const code = emulator.issueGrantCode({ clientId, userEmail: 'ana@zylker.com', redirectUri: REDIRECT_URL, codeChallenge });
      const victim = await manager.exchangeCode({ code, codeVerifier });
      expect(victim.grantToken).toBeNull();
      expect((await store.getTokens())[0]?.grantToken).toBeNull();
      const before = emulator.counts().tokenRequests;
      for (const verifier of [createPkce().codeVerifier, undefined, codeVerifier]) {
        const replay = await rejectionOf(manager.exchangeCode({ code, ...(verifier === undefined ? {} : { codeVerifier: verifier }) }));
        expect(OAuthError.is(replay) && replay.code).toBe('INVALID_GRANT');
      }
      expect(emulator.counts().tokenRequests).toBe(before + 3);
      expect(emulator.counts().codeExchanges).toBe(1);
      const stored = await store.getTokens();
      expect(stored.map((token) => token.refreshToken)).toEqual([victim.refreshToken]);
    }));

  it('shares one request between callers with the same code and verifier, not with another verifier', () =>
    withSignIn(async ({ emulator, clientId, manager }) => {
      const { codeVerifier, codeChallenge } = createPkce();
      const code = emulator.issueGrantCode({ clientId, userEmail: 'ana@zylker.com', redirectUri: REDIRECT_URL, codeChallenge });
      const results = await Promise.allSettled([
        manager.exchangeCode({ code, codeVerifier }),
        manager.exchangeCode({ code, codeVerifier }),
        manager.exchangeCode({ code, codeVerifier: createPkce().codeVerifier }),
      ]);
      expect(results.map((result) => result.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
      expect(emulator.counts().tokenRequests).toBe(2);
      expect(emulator.counts().codeExchanges).toBe(1);
    }));

  it('revokes the refresh token a new sign-in replaced, unless revokeReplaced is false', () =>
    withSignIn(async ({ emulator, clientId, clientSecret, store, manager }) => {
      const signIn = (options: { revokeReplaced?: boolean } = {}) =>
        manager.exchangeCode({
          code: emulator.issueGrantCode({ clientId, userEmail: 'ana@zylker.com', redirectUri: REDIRECT_URL }),
          ...options,
        });
      const refreshWith = async (refreshToken: string) => {
        const reply = await fetch(`${emulator.url}/oauth/v2/token`, {
          method: 'POST',
          body: new URLSearchParams({
            grant_type: 'refresh_token',
            refresh_token: refreshToken,
            client_id: clientId,
            client_secret: clientSecret,
          }),
        });
        return (await reply.json()) as { access_token?: string; error?: string };
      };
      const first = await signIn();
      const second = await signIn();
      expect(emulator.counts().revocations).toBe(1);
      expect((await refreshWith(first.refreshToken as string)).error).toBe('invalid_code');
      expect((await refreshWith(second.refreshToken as string)).access_token).toMatch(/^1000\./);
      const third = await signIn({ revokeReplaced: false });
      expect(emulator.counts().revocations).toBe(1);
      expect((await refreshWith(second.refreshToken as string)).access_token).toMatch(/^1000\./);
      expect((await store.getTokens()).map((token) => token.refreshToken)).toEqual([third.refreshToken]);
    }));

  it('saves nothing when the CRM does not say who signed in, and revokes the new refresh token', () =>
    // The API domain is a closed port: the current-user call cannot succeed.
    withSignIn(
      async ({ emulator, clientId, store, manager }) => {
        for (let attempt = 1; attempt <= 2; attempt++) {
          const code = emulator.issueGrantCode({ clientId, userEmail: 'ana@zylker.com', redirectUri: REDIRECT_URL });
          const error = await rejectionOf(manager.exchangeCode({ code }));
          expect(OAuthError.is(error) && [error.code, error.operation]).toEqual(['NETWORK', 'currentUser']);
          expect(emulator.counts().revocations).toBe(attempt);
        }
        expect(emulator.counts().codeExchanges).toBe(2);
        expect(await store.getTokens()).toEqual([]);
      },
      { apiDomain: 'http://127.0.0.1:9' },
    ));
});
