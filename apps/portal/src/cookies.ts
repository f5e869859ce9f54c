// Signed cookies: `<base64url JSON>.<base64url HMAC-SHA256>`, holding a user name, never a token; the HMAC makes
// them tamper-proof, HttpOnly keeps them from scripts. The sign-in cookie holds the PKCE verifier, a secret of
// the sign-in, so it is sealed (AES-256-GCM) rather than only signed.
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'portal_session';
/** Over https the session cookie is `__Host-portal_session`: Secure, Path=/, no Domain, so no subdomain can set it. */
export function sessionCookieName(secure: boolean): string {
  return secure ? `__Host-${SESSION_COOKIE}` : SESSION_COOKIE;
}
/** A sign-in under way: its `state` and PKCE verifier, for 10 minutes, sent back only to the callback's path. */
export const LOGIN_COOKIE = 'portal_login';
export const LOGIN_LIFETIME_MS = 10 * 60_000;
/**
 * One cookie per sign-in under way, named after a hash of its state, so that two tabs signing in at once do
 * not overwrite each other's; the callback reads and clears only the one of the state it receives.
 */
export function loginCookieName(state: string): string {
  return `${LOGIN_COOKIE}_${createHash('sha256').update(state).digest('base64url').slice(0, 22)}`;
}
/** A session ends after 12 hours, or at logout or disconnect. */
export const SESSION_LIFETIME_MS = 12 * 3_600_000;

export interface Session {
  /** The signed-in user's name: the email the accounts server gave their token. */
  user: string;
  /** The session's random id; the server keeps the live ones, so logout ends a session for every copy of its cookie. */
  id: string;
  /** When the session started, epoch milliseconds. */
  since: number;
}

export interface PendingLogin {
  state: string;
  codeVerifier: string | null;
  expires: number;
}

export class CookieSigner {
  readonly #secret: Buffer;

  constructor(secret: string) {
    this.#secret = Buffer.from(secret, 'utf8');
  }

  sign(purpose: string, value: object): string {
    const payload = Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
    return `${payload}.${this.#mac(purpose, payload)}`;
  }

  /** The value of a cookie this signer made for `purpose`, or null when it was not (altered, another purpose). */
  verify(purpose: string, cookie: string | undefined): unknown {
    if (typeof cookie !== 'string') return null;
    const [payload, mac, ...rest] = cookie.split('.');
    if (payload === undefined || mac === undefined || rest.length > 0) return null;
    const expected = Buffer.from(this.#mac(purpose, payload));
    const given = Buffer.from(mac);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return null;
    try {
      return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      return null;
    }
  }

  /** `value` encrypted and authenticated: `<base64url IV | ciphertext | tag>`. */
  seal(purpose: string, value: object): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key(purpose), iv);
    cipher.setAAD(Buffer.from(purpose));
    const sealed = Buffer.concat([iv, cipher.update(JSON.stringify(value), 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return sealed.toString('base64url');
  }

  /** The value `seal` sealed for `purpose`, or null for anything else. */
  open(purpose: string, cookie: string | undefined): unknown {
    if (typeof cookie !== 'string' || !/^[A-Za-z0-9_-]+$/.test(cookie)) return null;
    const sealed = Buffer.from(cookie, 'base64url');
    if (sealed.length < 12 + 16 + 2) return null;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key(purpose), sealed.subarray(0, 12));
      decipher.setAAD(Buffer.from(purpose));
      decipher.setAuthTag(sealed.subarray(sealed.length - 16));
      const text = Buffer.concat([decipher.update(sealed.subarray(12, sealed.length - 16)), decipher.final()]).toString('utf8');
      return JSON.parse(text);
    } catch {
      return null;
    }
  }

  /** The CSRF token of a session cookie: forms carry it, and a POST without the matching one is refused. */
  csrfToken(sessionCookie: string): string {
    return this.#mac('csrf', sessionCookie);
  }

  #key(purpose: string): Buffer {
    return createHmac('sha256', this.#secret).update(`key\n${purpose}`).digest();
  }

  #mac(purpose: string, payload: string): string {
    return createHmac('sha256', this.#secret).update(`${purpose}\n${payload}`).digest('base64url');
  }
}

export function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

export function readSession(signer: CookieSigner, cookie: string | undefined, now: number): Session | null {
  const value = signer.verify(SESSION_COOKIE, cookie) as Partial<Session> | null;
  if (
    value === null ||
    typeof value !== 'object' ||
    typeof value.user !== 'string' ||
    typeof value.id !== 'string' ||
    typeof value.since !== 'number'
  )
    return null;
  if (now - value.since > SESSION_LIFETIME_MS || value.since > now + 60_000) return null;
  return { user: value.user, id: value.id, since: value.since };
}

export function readPendingLogin(signer: CookieSigner, cookie: string | undefined, now: number): PendingLogin | null {
  const value = signer.open(LOGIN_COOKIE, cookie) as Partial<PendingLogin> | null;
  if (value === null || typeof value !== 'object' || typeof value.state !== 'string' || typeof value.expires !== 'number') return null;
  if (now >= value.expires) return null;
  return { state: value.state, codeVerifier: typeof value.codeVerifier === 'string' ? value.codeVerifier : null, expires: value.expires };
}

/** The `Set-Cookie` value; `Secure` when the portal is served over https. */
export function cookieHeader(name: string, value: string, options: { path: string; maxAgeSeconds?: number; secure: boolean }): string {
  const parts = [`${name}=${value}`, `Path=${options.path}`, 'HttpOnly', 'SameSite=Lax'];
  if (options.maxAgeSeconds !== undefined) parts.push(`Max-Age=${options.maxAgeSeconds}`);
  if (options.secure) parts.push('Secure');
  return parts.join('; ');
}

export function parseCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const index = part.indexOf('=');
    if (index <= 0) continue;
    const name = part.slice(0, index).trim();
    if (!cookies.has(name)) cookies.set(name, part.slice(index + 1).trim());
  }
  return cookies;
}

/**
 * The live sessions, in memory: a session id is live from sign-in until logout, disconnect or 12 hours. A
 * restart ends every session; several processes behind one address would need a shared table instead.
 */
export class SessionTable {
  readonly #sessions = new Map<string, { user: string; expires: number }>();

  start(user: string, now: number): Session {
    this.#prune(now);
    const id = randomBytes(24).toString('base64url');
    this.#sessions.set(id, { user, expires: now + SESSION_LIFETIME_MS });
    return { user, id, since: now };
  }

  isLive(session: Session, now: number): boolean {
    const live = this.#sessions.get(session.id);
    return live !== undefined && live.user === session.user && now < live.expires;
  }

  end(id: string): void {
    this.#sessions.delete(id);
  }

  /** Ends every session of a user (disconnect). */
  endUser(user: string): void {
    for (const [id, live] of this.#sessions) if (live.user === user) this.#sessions.delete(id);
  }

  get size(): number {
    return this.#sessions.size;
  }

  #prune(now: number): void {
    for (const [id, live] of this.#sessions) if (now >= live.expires) this.#sessions.delete(id);
  }
}
