/**
 * Tokens as people and scripts see them: a cli-table3 table, or plain objects for `--json`. Secrets (client
 * secret, access, refresh and grant tokens) are redacted as `@crm/core` redacts them unless `reveal` is set.
 */
import { type OAuthToken, redactSecret } from '@crm/core';
import Table from 'cli-table3';

export interface ShowOptions {
  /** Show secrets whole. */
  reveal?: boolean;
  /** The current time for "expired", in epoch milliseconds. */
  now?: number;
}

/** What `--json` prints for one token. */
export interface ShownToken {
  id: string | null;
  userName: string | null;
  clientId: string | null;
  clientSecret: string | null;
  refreshToken: string | null;
  accessToken: string | null;
  grantToken: string | null;
  expiryTime: number | null;
  expired: boolean;
  redirectUrl: string | null;
  apiDomain: string | null;
}

export function shownToken(token: OAuthToken, options: ShowOptions = {}): ShownToken {
  const secret = (value: string | null) => (options.reveal ? value : redactSecret(value));
  return {
    id: token.id,
    userName: token.userName,
    clientId: token.clientId,
    clientSecret: secret(token.clientSecret),
    refreshToken: secret(token.refreshToken),
    accessToken: secret(token.accessToken),
    grantToken: secret(token.grantToken),
    expiryTime: token.expiryTime,
    expired: token.isExpired(options.now ?? Date.now()),
    redirectUrl: token.redirectUrl,
    apiDomain: token.apiDomain,
  };
}

/** Tokens in a stable order: by user name, tokens without one last, then by id. */
export function sortTokens(tokens: OAuthToken[]): OAuthToken[] {
  return [...tokens].sort(
    (a, b) =>
      (a.userName === null ? 1 : 0) - (b.userName === null ? 1 : 0) ||
      (a.userName ?? '').localeCompare(b.userName ?? '') ||
      (a.id ?? '').localeCompare(b.id ?? '', undefined, { numeric: true }),
  );
}

/** `2026-05-01 10:00:00 UTC (in 59 min)`, or `unknown`. */
export function shownExpiry(expiryTime: number | null, now: number): string {
  if (expiryTime === null) return 'unknown';
  const when = `${new Date(expiryTime).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
  const minutes = Math.round((expiryTime - now) / 60_000);
  if (Math.abs(minutes) >= 60 * 48) return when;
  return minutes >= 0 ? `${when} (in ${minutes} min)` : `${when} (${-minutes} min ago)`;
}

const show = (value: string | null) => value ?? '-';

/** One row per token: id, user, client id, access and refresh token, expiry. */
export function tokenTable(tokens: OAuthToken[], options: ShowOptions = {}): string {
  const now = options.now ?? Date.now();
  const table = new Table({
    head: ['id', 'user', 'client id', 'access token', 'refresh token', 'expires', 'status'],
    style: { head: [], border: [] },
  });
  for (const token of tokens) {
    const shown = shownToken(token, options);
    table.push([
      show(shown.id),
      show(shown.userName),
      show(shown.clientId),
      show(shown.accessToken),
      show(shown.refreshToken),
      shownExpiry(shown.expiryTime, now),
      shown.expired ? 'expired' : 'valid',
    ]);
  }
  return table.toString();
}

/** Every field of one token, one per row. */
export function tokenDetails(token: OAuthToken, options: ShowOptions = {}): string {
  const now = options.now ?? Date.now();
  const shown = shownToken(token, options);
  const table = new Table({ style: { head: [], border: [] } });
  const rows: [string, string][] = [
    ['id', show(shown.id)],
    ['user', show(shown.userName)],
    ['client id', show(shown.clientId)],
    ['client secret', show(shown.clientSecret)],
    ['refresh token', show(shown.refreshToken)],
    ['access token', show(shown.accessToken)],
    ['grant token', show(shown.grantToken)],
    ['expires', shownExpiry(shown.expiryTime, now)],
    ['status', shown.expired ? 'expired' : 'valid'],
    ['redirect URL', show(shown.redirectUrl)],
    ['API domain', show(shown.apiDomain)],
  ];
  for (const [name, value] of rows) table.push({ [name]: value });
  return table.toString();
}
