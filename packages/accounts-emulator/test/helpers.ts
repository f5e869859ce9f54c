import type { AccountsEmulator } from '../src/index.js';

export const REDIRECT_URI = 'https://app.example.com/oauth/callback';
export const TOKEN_SHAPE = /^1000\.[0-9a-f]{32}\.[0-9a-f]{32}$/;

export interface TokenReply {
  status: number;
  body: Record<string, unknown>;
}

export async function post(url: string, fields: Record<string, string>): Promise<TokenReply> {
  const response = await fetch(url, { method: 'POST', body: new URLSearchParams(fields) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

export async function currentUser(emulator: AccountsEmulator, accessToken: unknown): Promise<TokenReply> {
  const response = await fetch(`${emulator.apiDomain}/crm/v8/users?type=CurrentUser`, {
    headers: { Authorization: `Zoho-oauthtoken ${String(accessToken)}` },
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** A registered client with one exchanged grant code: its refresh token and first access token. */
export async function signIn(emulator: AccountsEmulator, userEmail = 'ana@zylker.com') {
  const client = emulator.registerClient({ redirectUri: REDIRECT_URI });
  const code = emulator.issueGrantCode({ clientId: client.clientId, userEmail });
  const reply = await post(`${emulator.url}/oauth/v2/token`, {
    grant_type: 'authorization_code',
    code,
    client_id: client.clientId,
    client_secret: client.clientSecret,
    redirect_uri: REDIRECT_URI,
  });
  return { ...client, refreshToken: String(reply.body.refresh_token), accessToken: String(reply.body.access_token) };
}

export function refresh(emulator: AccountsEmulator, session: { clientId: string; clientSecret: string; refreshToken: string }) {
  return post(`${emulator.url}/oauth/v2/token`, {
    grant_type: 'refresh_token',
    refresh_token: session.refreshToken,
    client_id: session.clientId,
    client_secret: session.clientSecret,
  });
}
