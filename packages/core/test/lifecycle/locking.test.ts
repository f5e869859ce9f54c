/**
 * The manager around the store's lock: double-checked refreshes, conditional writes, lock timeouts and lost
 * leases, on MemoryTokenStore (which offers the lock) and on a store without the capability.
 * Two managers on one store stand for two processes: they share the store, nothing else.
 */
import {
  type MemoryTokenStore,
  OAuthError,
  OAuthToken,
  refreshLockKey,
  supportsLocking,
  type TokenStore,
  TokenStoreError,
} from '../../src/index';
import { HOUR, rejectionOf, type Setup, setup } from './helpers';

/** A store without the lock capability: MemoryTokenStore's six methods only. */
class StoreWithoutLock implements TokenStore {
  constructor(private readonly inner: MemoryTokenStore) {}
  findToken(token: OAuthToken) {
    return this.inner.findToken(token);
  }
  saveToken(token: OAuthToken) {
    return this.inner.saveToken(token);
  }
  deleteToken(id: string) {
    return this.inner.deleteToken(id);
  }
  getTokens() {
    return this.inner.getTokens();
  }
  deleteTokens() {
    return this.inner.deleteTokens();
  }
  findTokenById(id: string) {
    return this.inner.findTokenById(id);
  }
}

function freeze(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // busy wait: a frozen process, no timer runs
  }
}

const isRefresh = (init: RequestInit | undefined) => String(init?.body ?? '').includes('grant_type=refresh_token');

let env: Setup;
beforeEach(async () => {
  env = await setup();
});
afterEach(async () => {
  await env.close();
});

it('with the lock, two managers on one store (two processes) refresh once for 2 × 50 callers', async () => {
  await env.signIn();
  env.clock.advance(HOUR);
  const first = env.manager();
  const second = env.manager();
  const tokens = await Promise.all(
    Array.from({ length: 100 }, (_, index) => (index % 2 === 0 ? first : second).getAccessToken('ana@zylker.com')),
  );
  expect(new Set(tokens).size).toBe(1);
  expect(env.emulator.counts().refreshes).toBe(1);
});

it('after taking the lock the token is read again: a token another holder refreshed meanwhile is used, no request', async () => {
  const token = await env.signIn();
  env.clock.advance(HOUR);
  let release!: () => void;
  const fresh = new OAuthToken({ id: token.id, accessToken: '1000.refreshed-by-another-process', expiryTime: env.clock.time + HOUR });
  const held = env.store.withLock(`refresh:${token.id}`, async () => {
    await new Promise<void>((resolve) => (release = resolve));
    await env.store.saveToken(fresh);
  });
  const asking = env.manager().getAccessToken('ana@zylker.com');
  await new Promise((resolve) => setTimeout(resolve, 50));
  release();
  await held;
  expect(await asking).toBe('1000.refreshed-by-another-process');
  expect(env.emulator.counts().refreshes).toBe(0);
});

it('a lock wait that times out is LOCK_TIMEOUT, never an authorisation error; nothing was sent', async () => {
  const token = await env.signIn();
  env.clock.advance(HOUR);
  let release!: () => void;
  const held = env.store.withLock(`refresh:${token.id}`, () => new Promise<void>((resolve) => (release = resolve)));
  const error = await rejectionOf(env.manager({ lock: { waitMs: 100 } }).getAccessToken('ana@zylker.com'));
  expect(OAuthError.is(error)).toBe(false);
  expect(TokenStoreError.is(error) && [error.code, error.operation]).toEqual(['LOCK_TIMEOUT', 'withLock']);
  expect(env.emulator.counts().refreshes).toBe(0);
  release();
  await held;
});

it('a lock wait that times out serves a token inside the margin that has not expired yet', async () => {
  const token = await env.signIn();
  env.clock.advance(HOUR - 2000); // 2 s left: stale for the 5 s margin, still accepted by the API
  let release!: () => void;
  const held = env.store.withLock(`refresh:${token.id}`, () => new Promise<void>((resolve) => (release = resolve)));
  expect(await env.manager({ lock: { waitMs: 100 } }).getAccessToken('ana@zylker.com')).toBe(token.accessToken);
  expect(env.emulator.counts().refreshes).toBe(0);
  release();
  await held;
});

it('a lock wait that times out uses a fresh token that appeared meanwhile', async () => {
  const token = await env.signIn();
  env.clock.advance(HOUR);
  let release!: () => void;
  const held = env.store.withLock(`refresh:${token.id}`, async () => {
    await env.store.saveToken(
      new OAuthToken({ id: token.id, accessToken: '1000.written-by-the-holder', expiryTime: env.clock.time + HOUR }),
    );
    await new Promise<void>((resolve) => (release = resolve));
  });
  expect(await env.manager({ lock: { waitMs: 100 } }).getAccessToken('ana@zylker.com')).toBe('1000.written-by-the-holder');
  expect(env.emulator.counts().refreshes).toBe(0);
  release();
  await held;
});

it('a holder that lost its lease during the refresh writes nothing and returns its (valid) new access token', async () => {
  const token = await env.signIn();
  env.clock.advance(HOUR);
  let contender: Promise<void> | null = null;
  let releaseContender!: () => void;
  const manager = env.manager({
    lock: { leaseMs: 1000 },
    fetch: (url, init) => {
      if (isRefresh(init) && contender === null) {
        freeze(1300); // the lease runs out while this process is frozen
        // Another process takes the expired lock at once (its first try runs synchronously here).
        contender = env.store.withLock(`refresh:${token.id}`, () => new Promise<void>((resolve) => (releaseContender = resolve)));
      }
      return fetch(url, init);
    },
  });
  const accessToken = await manager.getAccessToken('ana@zylker.com');
  expect(accessToken).not.toBe(token.accessToken);
  expect(env.emulator.counts().refreshes).toBe(1);
  const stored = (await env.store.findTokenById(token.id as string)) as OAuthToken;
  expect(stored.accessToken).toBe(token.accessToken); // not written
  // The returned token is valid at the API.
  const response = await fetch(`${env.emulator.apiDomain}/crm/v8/users?type=CurrentUser`, {
    headers: { authorization: `Zoho-oauthtoken ${accessToken}` },
  });
  expect(response.status).toBe(200);
  releaseContender();
  await contender;
});

describe('revoke and the lock', () => {
  it("deletes under the token's lock: a rewrite by id under that lock (a rekey, a refresh) never brings it back", async () => {
    const token = await env.signIn();
    const id = token.id as string;
    let revoked: Promise<void> = Promise.resolve();
    // Another process holds the token's lock: it re-reads the token, revoke starts meanwhile, then it saves by id.
    await env.store.withLock(refreshLockKey(id), async () => {
      const reread = (await env.store.findTokenById(id)) as OAuthToken;
      revoked = env.manager().revoke(id);
      while (env.emulator.counts().revocations === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await env.store.findTokenById(id)).not.toBeNull(); // the delete waits for the lock
      await env.store.saveToken(new OAuthToken({ id, accessToken: reread.accessToken as string }));
    });
    await revoked;
    expect(await env.store.findTokenById(id)).toBeNull();
    expect(await env.store.getTokens()).toEqual([]);
  });

  it('refreshLockKey is refresh:<id>, hashed when that would pass the longest lock key', () => {
    expect(refreshLockKey('abc')).toBe('refresh:abc');
    expect(refreshLockKey('x'.repeat(504))).toBe(`refresh:${'x'.repeat(504)}`);
    expect(refreshLockKey('x'.repeat(505))).toMatch(/^refresh:sha256:[0-9a-f]{64}$/);
    expect(refreshLockKey('x'.repeat(505))).not.toBe(refreshLockKey('x'.repeat(506)));
  });
});

describe('without the lock capability', () => {
  let plain: StoreWithoutLock;
  beforeEach(() => {
    plain = new StoreWithoutLock(env.store);
    expect(supportsLocking(plain)).toBe(false);
  });

  it('still refreshes once for 100 concurrent callers of one manager (the in-process guarantee)', async () => {
    await env.signIn();
    env.clock.advance(HOUR);
    const manager = env.manager({ store: plain });
    const tokens = await Promise.all(Array.from({ length: 100 }, () => manager.getAccessToken('ana@zylker.com')));
    expect(new Set(tokens).size).toBe(1);
    expect(env.emulator.counts().refreshes).toBe(1);
  });

  it('the write is conditional: a token refreshed meanwhile by someone else is not overwritten', async () => {
    const token = await env.signIn();
    env.clock.advance(HOUR);
    const newer = '1000.written-while-this-refresh-was-in-flight';
    const manager = env.manager({
      store: plain,
      fetch: async (url, init) => {
        const response = await fetch(url, init);
        if (isRefresh(init)) {
          // Another process (no lock to stop it) refreshed and saved first.
          await env.store.saveToken(new OAuthToken({ id: token.id, accessToken: newer, expiryTime: env.clock.time + HOUR }));
        }
        return response;
      },
    });
    expect(await manager.getAccessToken('ana@zylker.com')).toBe(newer);
    expect(env.emulator.counts().refreshes).toBe(1);
    expect(((await env.store.findTokenById(token.id as string)) as OAuthToken).accessToken).toBe(newer);
  });

  it('a refresh writes only what it changed: a refresh token written between its check and its write is kept', async () => {
    const token = await env.signIn();
    env.clock.advance(HOUR);
    const reconsented = '1000.refresh-token-of-a-new-consent';
    let written = false;
    /** Just before the refresh's write lands, a re-consent stores a new refresh token in the same row. */
    class RacingStore extends StoreWithoutLock {
      override async saveToken(saving: OAuthToken) {
        if (!written && saving.id === token.id) {
          written = true;
          await env.store.saveToken(new OAuthToken({ id: token.id, refreshToken: reconsented }));
        }
        return super.saveToken(saving);
      }
    }
    const manager = env.manager({ store: new RacingStore(env.store) });
    const accessToken = await manager.getAccessToken('ana@zylker.com');
    expect(env.emulator.counts().refreshes).toBe(1);
    const stored = (await env.store.findTokenById(token.id as string)) as OAuthToken;
    expect([stored.refreshToken, stored.accessToken, stored.userName]).toEqual([reconsented, accessToken, 'ana@zylker.com']);
  });

  it("two managers (two processes) may both refresh, but the second writer keeps the first one's token", async () => {
    const token = await env.signIn();
    env.clock.advance(HOUR);
    const [first, second] = await Promise.all([
      env.manager({ store: plain }).getAccessToken('ana@zylker.com'),
      env.manager({ store: plain }).getAccessToken('ana@zylker.com'),
    ]);
    expect(env.emulator.counts().refreshes).toBe(2);
    const stored = (await env.store.findTokenById(token.id as string)) as OAuthToken;
    expect(first).toBe(stored.accessToken);
    expect(second).toBe(stored.accessToken);
  });

  it('a token deleted during the refresh is not brought back', async () => {
    const token = await env.signIn();
    env.clock.advance(HOUR);
    const manager = env.manager({
      store: plain,
      fetch: async (url, init) => {
        const response = await fetch(url, init);
        if (isRefresh(init)) await env.store.deleteToken(token.id as string);
        return response;
      },
    });
    expect(await manager.getAccessToken('ana@zylker.com')).toMatch(/^1000\./);
    expect(await env.store.getTokens()).toEqual([]);
  });
});
