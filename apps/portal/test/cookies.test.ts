import {
  CookieSigner,
  LOGIN_COOKIE,
  loginCookieName,
  readPendingLogin,
  readSession,
  SESSION_COOKIE,
  SESSION_LIFETIME_MS,
  SessionTable,
} from '../src/cookies.js';

const signer = new CookieSigner('a-session-secret-of-at-least-32-characters');
const now = Date.UTC(2030, 0, 1);

describe('session cookies', () => {
  it('read back what was signed, and nothing altered, re-signed with another key or made for another purpose', () => {
    const cookie = signer.sign(SESSION_COOKIE, { user: 'ana@zylker.com', id: 'sid', since: now });
    expect(readSession(signer, cookie, now + 1000)).toEqual({ user: 'ana@zylker.com', id: 'sid', since: now });
    const [payload, mac] = cookie.split('.') as [string, string];
    const forged = Buffer.from(JSON.stringify({ user: 'bo@zylker.com', id: 'sid', since: now })).toString('base64url');
    expect(readSession(signer, `${forged}.${mac}`, now)).toBeNull();
    expect(readSession(signer, `${payload}.${mac.slice(0, -2)}AA`, now)).toBeNull();
    expect(readSession(new CookieSigner('another-session-secret-of-32-characters!'), cookie, now)).toBeNull();
    expect(readSession(signer, signer.sign('other', { user: 'ana@zylker.com', id: 'sid', since: now }), now)).toBeNull();
    expect(readSession(signer, undefined, now)).toBeNull();
    expect(readSession(signer, 'garbage', now)).toBeNull();
  });

  it('end after their lifetime', () => {
    const cookie = signer.sign(SESSION_COOKIE, { user: 'ana@zylker.com', id: 'sid', since: now });
    expect(readSession(signer, cookie, now + SESSION_LIFETIME_MS + 1)).toBeNull();
  });

  it('have a CSRF token per session cookie', () => {
    const one = signer.sign(SESSION_COOKIE, { user: 'ana@zylker.com', id: 'sid', since: now });
    const two = signer.sign(SESSION_COOKIE, { user: 'ana@zylker.com', id: 'sid', since: now + 1 });
    expect(signer.csrfToken(one)).toBe(signer.csrfToken(one));
    expect(signer.csrfToken(one)).not.toBe(signer.csrfToken(two));
  });
});

describe('the session table', () => {
  it('keeps a session live until it ends, its user is disconnected or 12 hours pass', () => {
    const table = new SessionTable();
    const one = table.start('ana@zylker.com', now);
    const two = table.start('ana@zylker.com', now);
    const other = table.start('bo@zylker.com', now);
    expect(one.id).not.toBe(two.id);
    expect(table.isLive(one, now)).toBe(true);
    expect(table.isLive({ ...one, user: 'bo@zylker.com' }, now)).toBe(false);
    table.end(one.id);
    expect(table.isLive(one, now)).toBe(false);
    expect(table.isLive(two, now)).toBe(true);
    table.endUser('ana@zylker.com');
    expect(table.isLive(two, now)).toBe(false);
    expect(table.isLive(other, now + SESSION_LIFETIME_MS - 1)).toBe(true);
    expect(table.isLive(other, now + SESSION_LIFETIME_MS)).toBe(false);
    table.start('cy@zylker.com', now + SESSION_LIFETIME_MS);
    expect(table.size).toBe(1);
  });
});

describe('the sign-in cookie', () => {
  it('is named after its state, so sign-ins in two tabs keep one cookie each', () => {
    expect(loginCookieName('state-one')).toMatch(/^portal_login_[A-Za-z0-9_-]{22}$/);
    expect(loginCookieName('state-one')).toBe(loginCookieName('state-one'));
    expect(loginCookieName('state-one')).not.toBe(loginCookieName('state-two'));
  });

  it('is sealed: the verifier cannot be read from it, and it expires', () => {
    const codeVerifier = 'v'.repeat(43);
    const cookie = signer.seal(LOGIN_COOKIE, { state: 'st', codeVerifier, expires: now + 60_000 });
    expect(Buffer.from(cookie, 'base64url').toString('latin1')).not.toContain(codeVerifier);
    expect(readPendingLogin(signer, cookie, now)).toEqual({ state: 'st', codeVerifier, expires: now + 60_000 });
    expect(readPendingLogin(signer, cookie, now + 60_000)).toBeNull();
    const flipped = Buffer.from(cookie, 'base64url');
    flipped[20] = (flipped[20] as number) ^ 1;
    expect(readPendingLogin(signer, flipped.toString('base64url'), now)).toBeNull();
    expect(readPendingLogin(signer, signer.sign(LOGIN_COOKIE, { state: 'st', codeVerifier, expires: now + 60_000 }), now)).toBeNull();
  });
});
