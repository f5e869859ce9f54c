// Zoho's authorisation page, emulated: GET /oauth/v2/auth shows a consent form, its POST sends the browser
// back to the client's redirect URI with a grant code (or error=access_denied). Only a registered client and
// one of its registered redirect URIs are ever redirected to; anything else gets an error page, so the page
// cannot be used as an open redirect. The form carries a single-use nonce bound to the browser by a cookie,
// so another site cannot post a consent on a user's behalf.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Accounts, Reply } from './accounts.js';

/** How long a consent page may wait for its answer. */
const CONSENT_LIFETIME_MS = 10 * 60_000;
/** Pending consent pages kept at most; the oldest go first. */
const MAX_PENDING = 1000;
export const BROWSER_COOKIE = 'zoho_emulator_browser';
const COOKIE_PATH = '/oauth/v2/auth';
const EMAIL = /^[^\s@<>"'&]{1,64}@[^\s@<>"'&]{1,189}$/;
const S256_CHALLENGE = /^[A-Za-z0-9_-]{43}$/;

interface PendingConsent {
  browser: string;
  clientId: string;
  redirectUri: string;
  scope: string;
  state: string | null;
  codeChallenge: string | null;
  shownAt: number;
}

export interface ConsentOptions {
  /** The user the consent form proposes. */
  defaultUserEmail: string;
  /** The emulator's own URL, sent back as `accounts-server` as Zoho does. */
  accountsUrl: () => string;
  /** Zoho's `location` value for this accounts server (`us`, `eu`, ...). */
  location: string;
}

export class ConsentPages {
  /** By nonce, oldest first (Map keeps insertion order). */
  private readonly pending = new Map<string, PendingConsent>();

  constructor(
    private readonly accounts: Accounts,
    private readonly clock: () => number,
    private readonly options: ConsentOptions,
  ) {}

  /** GET /oauth/v2/auth */
  show(fields: URLSearchParams, cookieHeader: string | undefined): Reply {
    const clientId = fields.get('client_id') ?? '';
    const client = this.accounts.client(clientId);
    if (!client) return errorPage(400, 'Invalid Client', 'The application asking for access is not registered (unknown client_id).');
    const redirectUri = fields.get('redirect_uri') ?? '';
    if (!client.redirectUris.includes(redirectUri)) {
      return errorPage(400, 'Invalid Redirect Uri', 'The redirect URI does not match any registered for this client.');
    }
    // From here on the redirect URI is the client's own: errors go back to it, as RFC 6749 says.
    const state = fields.get('state');
    if (fields.get('response_type') !== 'code') return redirect(redirectUri, { error: 'unsupported_response_type', state });
    const scope = fields.get('scope') ?? '';
    if (scope.trim() === '') return redirect(redirectUri, { error: 'invalid_scope', state });
    const codeChallenge = fields.get('code_challenge');
    if (codeChallenge !== null && (fields.get('code_challenge_method') !== 'S256' || !S256_CHALLENGE.test(codeChallenge))) {
      // Only S256: `plain` would send the verifier itself through the browser.
      return redirect(redirectUri, { error: 'invalid_request', state });
    }
    const browser = readCookie(cookieHeader, BROWSER_COOKIE) ?? randomBytes(24).toString('base64url');
    const nonce = randomBytes(24).toString('base64url');
    this.prune();
    this.pending.set(nonce, { browser, clientId, redirectUri, scope, state, codeChallenge, shownAt: this.clock() });
    return {
      status: 200,
      body: {},
      html: consentPage({ nonce, clientId, redirectUri, scope, email: this.options.defaultUserEmail }),
      headers: {
        'set-cookie': `${BROWSER_COOKIE}=${browser}; Path=${COOKIE_PATH}; HttpOnly; SameSite=Strict`,
        ...PAGE_HEADERS,
        // Browsers apply form-action to the redirect after the post too: allow the client's redirect URI only.
        'content-security-policy': csp(`'self' ${new URL(redirectUri).origin}`),
      },
    };
  }

  /** POST /oauth/v2/auth/consent */
  answer(fields: URLSearchParams, cookieHeader: string | undefined): Reply {
    const nonce = fields.get('consent') ?? '';
    const pending = this.pending.get(nonce);
    const browser = readCookie(cookieHeader, BROWSER_COOKIE);
    if (!pending || browser === null || !sameText(browser, pending.browser)) {
      return errorPage(
        400,
        'Invalid Request',
        'This consent form is not valid here: it expired, was already answered, or was not shown to this browser.',
      );
    }
    this.pending.delete(nonce); // single use, whatever the answer
    if (this.clock() - pending.shownAt >= CONSENT_LIFETIME_MS) {
      return errorPage(400, 'Invalid Request', 'This consent form expired; start the sign-in again.');
    }
    if (fields.get('decision') !== 'accept') return redirect(pending.redirectUri, { error: 'access_denied', state: pending.state });
    const email = (fields.get('email') ?? '').trim();
    if (!EMAIL.test(email)) {
      return errorPage(400, 'Invalid Email', 'Enter an email address such as ana@zylker.com; start the sign-in again.');
    }
    const code = this.accounts.issueGrantCode({
      clientId: pending.clientId,
      userEmail: email,
      redirectUri: pending.redirectUri,
      scope: pending.scope,
      codeChallenge: pending.codeChallenge ?? undefined,
    });
    return redirect(pending.redirectUri, {
      state: pending.state,
      code,
      location: this.options.location,
      'accounts-server': this.options.accountsUrl(),
    });
  }

  private prune(): void {
    const now = this.clock();
    for (const [nonce, pending] of this.pending) {
      if (this.pending.size >= MAX_PENDING || now - pending.shownAt >= CONSENT_LIFETIME_MS) this.pending.delete(nonce);
    }
  }
}

function csp(formAction: string): string {
  return `default-src 'none'; style-src 'unsafe-inline'; form-action ${formAction}; frame-ancestors 'none'`;
}

const PAGE_HEADERS = {
  // Not framed by another site (a consent click must be the user's own), nothing loaded from elsewhere.
  'x-frame-options': 'DENY',
  'content-security-policy': csp("'none'"),
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
};

/** 302 to the redirect URI with the fields added to its query (null ones left out). */
function redirect(redirectUri: string, fields: Record<string, string | null>): Reply {
  const target = new URL(redirectUri);
  for (const [name, value] of Object.entries(fields)) if (value !== null) target.searchParams.append(name, value);
  const location = target.toString();
  return {
    status: 302,
    body: {},
    html: `<!doctype html><title>Redirecting</title><a href="${escapeHtml(location)}">Continue</a>`,
    headers: { location, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' },
  };
}

function errorPage(status: number, title: string, text: string): Reply {
  return { status, body: {}, html: page(title, `<p class="error">${escapeHtml(text)}</p>`), headers: PAGE_HEADERS };
}

function consentPage(input: { nonce: string; clientId: string; redirectUri: string; scope: string; email: string }): string {
  const scopes = input.scope
    .split(/[,\s]+/)
    .filter(Boolean)
    .map((scope) => `<li><code>${escapeHtml(scope)}</code></li>`)
    .join('');
  return page(
    'Sign in and allow access',
    `<p>The application <code>${escapeHtml(input.clientId)}</code> asks to access your Zoho CRM data:</p>
<ul>${scopes}</ul>
<p>You will be sent back to <code>${escapeHtml(new URL(input.redirectUri).origin)}</code>.</p>
<form method="post" action="/oauth/v2/auth/consent">
<input type="hidden" name="consent" value="${escapeHtml(input.nonce)}">
<label>Sign in as <input type="email" name="email" value="${escapeHtml(input.email)}" required></label>
<p><button type="submit" name="decision" value="accept" id="accept">Accept</button>
<button type="submit" name="decision" value="reject" id="reject" formnovalidate>Reject</button></p>
</form>`,
  );
}

function page(title: string, content: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)} · Zoho accounts emulator</title>
<style>body{font-family:sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}.error{color:#b00020}
.banner{background:#fff3cd;padding:.5rem}button{padding:.4rem 1.2rem;margin-right:.5rem}</style></head>
<body><p class="banner">Zoho accounts emulator (on loopback, for tests and demos)</p>
<h1>${escapeHtml(title)}</h1>
${content}
</body></html>`;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[char] as string);
}

function readCookie(header: string | undefined, name: string): string | null {
  for (const part of (header ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return value.join('=');
  }
  return null;
}

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
