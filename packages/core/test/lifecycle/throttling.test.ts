import { OAuthError } from '../../src/index';
import { rejectionOf, type Setup, setup } from './helpers';

const LIFETIME = 10_000;
let env: Setup;
beforeEach(async () => {
  env = await setup({ accessTokenLifetimeMs: LIFETIME });
});
afterEach(async () => {
  await env.close();
});

it('a throttled refresh is not retried during the cooldown; the still-valid token is used, else THROTTLED with the time to wait', async () => {
  await env.signIn();
  const manager = env.manager();
  const seen = new Set<string>();
  for (let index = 0; index < 10; index++) {
    env.clock.advance(LIFETIME + 1);
    seen.add(await manager.getAccessToken('ana@zylker.com'));
  }
  expect(seen.size).toBe(10);
  expect(env.emulator.counts().refreshes).toBe(10);

  // The 11th refresh within 10 minutes is throttled; the stored token still has 4 s: it is returned.
  env.clock.advance(LIFETIME - 4000);
  const stillValid = (await env.store.getTokens())[0]!.accessToken;
  expect(await manager.getAccessToken('ana@zylker.com')).toBe(stillValid);
  expect(env.emulator.counts()).toMatchObject({ refreshes: 10, throttled: 1 });
  const requests = env.emulator.counts().tokenRequests;

  // During the cooldown: no request at all.
  expect(await manager.getAccessToken('ana@zylker.com')).toBe(stillValid);
  env.clock.advance(5000); // now expired
  const error = await rejectionOf(manager.getAccessToken('ana@zylker.com'));
  expect(OAuthError.is(error) && [error.code, error.retryAfterMs]).toEqual(['THROTTLED', 55_000]);
  expect(env.emulator.counts().tokenRequests).toBe(requests);

  // After the cooldown one request is tried; Zoho's window is still full, so it is throttled again.
  env.clock.advance(55_000);
  const again = await rejectionOf(manager.getAccessToken('ana@zylker.com'));
  expect(OAuthError.is(again) && [again.code, again.retryAfterMs]).toEqual(['THROTTLED', 60_000]);
  expect(env.emulator.counts().tokenRequests).toBe(requests + 1);

  // Once Zoho's 10-minute window has room again, refreshing works.
  env.clock.advance(10 * 60_000);
  expect(await manager.getAccessToken('ana@zylker.com')).not.toBe(stillValid);
  expect(env.emulator.counts().refreshes).toBe(11);
});

it('many callers of a throttled token make one request, then fail fast', async () => {
  await env.signIn();
  const manager = env.manager({ throttleCooldownMs: 30_000 });
  for (let index = 0; index < 10; index++) {
    env.clock.advance(LIFETIME + 1);
    await manager.getAccessToken('ana@zylker.com');
  }
  env.clock.advance(LIFETIME + 1);
  const requests = env.emulator.counts().tokenRequests;
  const results = await Promise.allSettled(Array.from({ length: 50 }, () => manager.getAccessToken('ana@zylker.com')));
  expect(
    results.every((result) => result.status === 'rejected' && OAuthError.is(result.reason) && result.reason.code === 'THROTTLED'),
  ).toBe(true);
  const later = await rejectionOf(manager.getAccessToken('ana@zylker.com'));
  expect(OAuthError.is(later) && later.retryAfterMs).toBe(30_000);
  expect(env.emulator.counts().tokenRequests).toBe(requests + 1);
});

it("a server's Retry-After longer than the cooldown is honoured, both in the pause and in retryAfterMs", async () => {
  await env.signIn();
  /** The emulator's replies, with `Retry-After: 600` added to a throttled one (Zoho's own replies carry none). */
  const withRetryAfter: typeof fetch = async (url, init) => {
    const response = await fetch(url, init);
    if (response.status !== 400) return response;
    const headers = new Headers(response.headers);
    headers.set('retry-after', '600');
    return new Response(await response.text(), { status: response.status, headers });
  };
  const manager = env.manager({ throttleCooldownMs: 30_000, fetch: withRetryAfter });
  for (let index = 0; index < 10; index++) {
    env.clock.advance(LIFETIME + 1);
    await manager.getAccessToken('ana@zylker.com');
  }
  env.clock.advance(LIFETIME + 1);
  const first = await rejectionOf(manager.getAccessToken('ana@zylker.com'));
  expect(OAuthError.is(first) && [first.code, first.retryAfterMs]).toEqual(['THROTTLED', 600_000]);
  const requests = env.emulator.counts().tokenRequests;
  env.clock.advance(61_000); // past the manager's own cooldown, well inside the server's 10 minutes
  const later = await rejectionOf(manager.getAccessToken('ana@zylker.com'));
  expect(OAuthError.is(later) && [later.code, later.retryAfterMs]).toEqual(['THROTTLED', 539_000]);
  expect(env.emulator.counts().tokenRequests).toBe(requests);
});
