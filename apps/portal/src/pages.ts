// The portal's pages as plain HTML strings. Every value that did not come from this file goes through `html`'s
// escaping; a page never receives a token or a secret unredacted.
import { type OAuthToken, redactSecret } from '@crm/core';

export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(
    /[&<>"']/g,
    (char) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[char] as string,
  );
}

/** Markup already escaped by `html`. */
class Markup {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

/** A template tag: interpolated values are escaped, `Markup` (from `html` itself) and arrays of it are not. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Markup {
  let text = strings[0] ?? '';
  values.forEach((value, index) => {
    const parts = Array.isArray(value) ? value : [value];
    for (const part of parts) text += part instanceof Markup ? part.text : escapeHtml(part);
    text += strings[index + 1] ?? '';
  });
  return new Markup(text);
}

export interface PageContext {
  /** The signed-in user, or null. */
  user: string | null;
  /** The session's CSRF token, for the forms that change something. */
  csrf: string | null;
  /** Where sign-ins go: `the Zoho accounts emulator at http://127.0.0.1:...` or `Zoho (EU)`. */
  accountsLabel: string;
}

function layout(title: string, context: PageContext, content: Markup): string {
  const account =
    context.user === null
      ? html`<span>Not signed in</span>`
      : html`<span>Signed in as <strong id="user">${context.user}</strong></span>
<form method="post" action="/logout" class="inline"><input type="hidden" name="csrf" value="${context.csrf}"><button type="submit" id="logout">Log out</button></form>`;
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · CRM portal</title>
<style>
body{font-family:system-ui,sans-serif;max-width:56rem;margin:0 auto;padding:0 1rem;color:#1d2433}
header{display:flex;gap:1rem;align-items:center;justify-content:space-between;border-bottom:1px solid #d0d7e2;padding:.8rem 0}
nav a{margin-right:1rem}.inline{display:inline;margin-left:.5rem}
table{border-collapse:collapse;width:100%;font-size:.85rem}td,th{border:1px solid #d0d7e2;padding:.3rem .5rem;text-align:left;overflow-wrap:anywhere}
th{background:#f2f5f9}.button{display:inline-block;background:#e42527;color:#fff;padding:.6rem 1.2rem;border-radius:4px;text-decoration:none}
.error{color:#b00020}.muted{color:#5b6475}dl{display:grid;grid-template-columns:12rem 1fr;gap:.3rem}dt{font-weight:600}
button{padding:.3rem .9rem}
</style></head>
<body><header><nav><a href="/">Home</a><a href="/profile">Profile</a><a href="/tokens">Tokens</a></nav><div>${account}</div></header>
<main><h1>${title}</h1>
${content}
</main></body></html>`.text;
}

export function homePage(context: PageContext): string {
  const content =
    context.user === null
      ? html`<p>Sign in with your Zoho account to see your CRM profile. The portal keeps your tokens in its token store;
your browser only gets a signed session cookie.</p>
<p><a class="button" id="login" href="/login">Login with Zoho</a></p>
<p class="muted">Sign-ins go to ${context.accountsLabel}.</p>`
      : html`<p>Welcome back, ${context.user}.</p>
<p><a href="/profile">Your CRM profile</a> · <a href="/tokens">Stored tokens</a></p>`;
  return layout('Home', context, content);
}

export interface Profile {
  email: string;
  fullName: string;
  id: string;
  role: string | null;
  profile: string | null;
  status: string | null;
}

export function profilePage(context: PageContext, profile: Profile, apiDomain: string): string {
  return layout(
    'Your CRM profile',
    context,
    html`<dl id="profile">
<dt>Name</dt><dd id="full-name">${profile.fullName}</dd>
<dt>Email</dt><dd id="email">${profile.email}</dd>
<dt>User id</dt><dd>${profile.id}</dd>
<dt>Role</dt><dd>${profile.role ?? '-'}</dd>
<dt>Profile</dt><dd>${profile.profile ?? '-'}</dd>
<dt>Status</dt><dd>${profile.status ?? '-'}</dd>
</dl>
<p class="muted">From ${apiDomain}/crm/v8/users?type=CurrentUser, with an access token the portal keeps valid (refreshed when it expires).</p>
<h2>Disconnect</h2>
<p>Revokes the portal's access at Zoho and deletes your token from the store. You can sign in again any time.</p>
<form method="post" action="/disconnect"><input type="hidden" name="csrf" value="${context.csrf}"><button type="submit" id="disconnect">Disconnect from Zoho</button></form>`,
  );
}

function expiry(token: OAuthToken, now: number): string {
  if (token.expiryTime === null) return '-';
  const minutes = Math.round((token.expiryTime - now) / 60_000);
  const when = new Date(token.expiryTime).toISOString().replace('.000Z', 'Z');
  return minutes <= 0 ? `${when} (expired)` : `${when} (in ${minutes} min)`;
}

/** `storeLabel`: where the tokens are kept, for an admin's page (all tokens); null for a user's own token. */
export function tokensPage(context: PageContext, tokens: OAuthToken[], storeLabel: string | null, now: number): string {
  const rows = tokens.map(
    (token) => html`<tr${token.userSignature?.name === context.user ? html` class="mine"` : html``}>
<td>${token.id}</td><td>${token.userSignature?.name ?? '-'}</td><td>${token.clientId ?? '-'}</td>
<td>${redactSecret(token.clientSecret) ?? '-'}</td><td>${redactSecret(token.refreshToken) ?? '-'}</td>
<td>${redactSecret(token.accessToken) ?? '-'}</td><td>${redactSecret(token.grantToken) ?? '-'}</td>
<td>${expiry(token, now)}</td><td>${token.apiDomain ?? '-'}</td></tr>`,
  );
  return layout(
    'Stored tokens',
    context,
    html`<p>${
      storeLabel === null
        ? html`${tokens.length === 0 ? 'The store holds no token for you.' : 'The token the portal keeps for you.'}`
        : html`${tokens.length} token${tokens.length === 1 ? '' : 's'} in ${storeLabel}.`
    } Secrets are redacted: only their last four characters show.</p>
<table id="tokens"><thead><tr><th>id</th><th>user</th><th>client id</th><th>client secret</th><th>refresh token</th><th>access token</th><th>grant token</th><th>expires</th><th>API domain</th></tr></thead>
<tbody>${rows}</tbody></table>`,
  );
}

export function errorPage(context: PageContext, title: string, text: string): string {
  return layout(title, context, html`<p class="error" id="error">${text}</p><p><a href="/">Back to the portal</a></p>`);
}
