/**
 * The tokens every contender holds: realistic sizes (Zoho's 1000.<32 hex>.<32 hex> tokens), deterministic,
 * so each contender of a backend stores exactly the same rows and the bench looks up the same users.
 */
import { createHash } from 'node:crypto';
import { OAuthToken, type TokenStore, UserSignature } from '@crm/core';
import { TOKEN_COLUMNS } from '@crm/core/store-kit';
import { CONTENDER_KINDS, type Contender, type ContenderKind } from './backend.js';

/** Zoho's columns in Zoho's order: the store kit's own list. */
export const COLUMNS = TOKEN_COLUMNS;

export type Column = (typeof COLUMNS)[number];
export type TokenRow = Record<Column, string | null>;

const hex = (seed: string) => createHash('md5').update(seed).digest('hex');

/** Ids of stored tokens: digits, zero-padded, so Zoho's `max(id) + 1` over a varchar column stays past them. */
export const tokenId = (index: number) => String(index + 1).padStart(10, '0');
export const userName = (index: number) => `user${index}@zylker.com`;
/** A user no contender holds yet: `who` keeps the contenders' new users apart. */
export const newUserName = (who: string, tag: string, round: number) => `new-${who}-${tag}-${round}@zylker.com`;

const EXPIRY_BASE = 1_900_000_000_000;

export function tokenRow(index: number): TokenRow {
  return {
    id: tokenId(index),
    user_name: userName(index),
    client_id: '1000.ABCDEFGHIJKLMNOPQRSTUVWXYZ0123',
    client_secret: hex(`secret${index}`).slice(0, 32),
    refresh_token: `1000.${hex(`refresh${index}`)}.${hex(`refresh-b${index}`)}`,
    access_token: `1000.${hex(`access${index}`)}.${hex(`access-b${index}`)}`,
    grant_token: null,
    expiry_time: String(EXPIRY_BASE + index),
    redirect_url: 'https://zylker.com/oauth/callback',
    api_domain: 'https://www.zohoapis.com',
  };
}

/** Rows `from` to `to` (exclusive). */
export function tokenRows(from: number, to: number): TokenRow[] {
  const rows: TokenRow[] = [];
  for (let index = from; index < to; index++) rows.push(tokenRow(index));
  return rows;
}

/** The row as an OAuthToken of @crm/core. */
export function toOAuthToken(row: TokenRow): OAuthToken {
  return new OAuthToken({
    id: row.id,
    userSignature: row.user_name === null ? null : new UserSignature(row.user_name),
    clientId: row.client_id,
    clientSecret: row.client_secret,
    refreshToken: row.refresh_token,
    accessToken: row.access_token,
    grantToken: row.grant_token,
    expiryTime: row.expiry_time === null ? null : Number(row.expiry_time),
    redirectUrl: row.redirect_url,
    apiDomain: row.api_domain,
  });
}

/** The input of round `round`: a stored user, spread over the whole table, the same for every contender. */
export function pickIndex(round: number, size: number): number {
  return (round * 7919 + 13) % size;
}

/**
 * A refreshed access token and expiry for round `round`, different for each contender (`who`). Contenders
 * that share a table update the same user in the same round: with equal values the later one would write
 * nothing new, and InnoDB skips a row whose values do not change (no row write, no redo, no commit flush).
 */
export function refreshed(round: number, who: ContenderKind): { accessToken: string; expiryTime: number } {
  return {
    accessToken: `1000.${hex(`refreshed-${who}${round}`)}.${hex(`refreshed-b-${who}${round}`)}`,
    expiryTime: EXPIRY_BASE + 3_600_000 + round * CONTENDER_KINDS.length + CONTENDER_KINDS.indexOf(who),
  };
}

/** A new user's full token (no id: the store gives one). */
export function newTokenRow(name: string, round: number): TokenRow {
  const row = tokenRow(1_000_000 + round);
  return { ...row, id: null, user_name: name };
}

/** A new user's token for a store: every field but the id, which the store gives. */
export function ourNewToken(row: TokenRow): OAuthToken {
  return new OAuthToken({
    userSignature: new UserSignature(row.user_name as string),
    clientId: row.client_id,
    clientSecret: row.client_secret,
    refreshToken: row.refresh_token,
    accessToken: row.access_token,
    expiryTime: Number(row.expiry_time),
    redirectUrl: row.redirect_url,
    apiDomain: row.api_domain,
  });
}

/** Our store as a contender: the same four calls, whichever backend it keeps its tokens in. */
export function ourContender(label: string, store: TokenStore, size: number, tag: string, fewer?: Contender['fewer']): Contender {
  return {
    kind: 'ours',
    label,
    ...(fewer ? { fewer } : {}),
    operations: {
      'findToken (user name)': (round) =>
        store.findToken(new OAuthToken({ userSignature: new UserSignature(userName(pickIndex(round, size))) })),
      findTokenById: (round) => store.findTokenById(tokenId(pickIndex(round, size))),
      'saveToken (update)': (round) =>
        store.saveToken(
          new OAuthToken({ userSignature: new UserSignature(userName(pickIndex(round, size))), ...refreshed(round, 'ours') }),
        ),
      'saveToken (insert)': (round) => store.saveToken(ourNewToken(newTokenRow(newUserName('ours', tag, round), round))),
    },
  };
}
