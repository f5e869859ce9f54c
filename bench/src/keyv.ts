/**
 * Keyv as a team would use it for tokens: each token one JSON value keyed by user name, a second copy
 * keyed by id (`id:<id>`) so findTokenById works, `get`/`set` only.
 */
import type Keyv from 'keyv';
import type { Contender } from './backend.js';
import { newTokenRow, newUserName, pickIndex, refreshed, type TokenRow, tokenId, tokenRow, userName } from './tokens.js';

export const idKey = (id: string) => `id:${id}`;

/**
 * The Keyv contender. Update: one `set` of the whole refreshed token under its user name (a Keyv user holds
 * the whole token after a refresh; the id copy is not rewritten, so Keyv does less than a store that keeps
 * one record). Insert: `set` under the user name and under the id, side by side.
 */
export function keyvContender(keyv: Keyv<TokenRow>, label: string, size: number, tag: string): Contender {
  return {
    kind: 'keyv',
    label,
    operations: {
      'findToken (user name)': (round) => keyv.get(userName(pickIndex(round, size))),
      findTokenById: (round) => keyv.get(idKey(tokenId(pickIndex(round, size)))),
      'saveToken (update)': (round) => {
        const index = pickIndex(round, size);
        const { accessToken, expiryTime } = refreshed(round, 'keyv');
        return keyv.set(userName(index), { ...tokenRow(index), access_token: accessToken, expiry_time: String(expiryTime) });
      },
      'saveToken (insert)': (round) => {
        const row = { ...newTokenRow(newUserName('keyv', tag, round), round), id: `k${tag}${round}` };
        return Promise.all([keyv.set(row.user_name as string, row), keyv.set(idKey(row.id), row)]);
      },
    },
  };
}

/** The entries of rows as Keyv holds them: by user name and by id. */
export function keyvEntries(rows: TokenRow[]): Array<{ key: string; value: TokenRow }> {
  return rows.flatMap((row) => [
    { key: row.user_name as string, value: row },
    { key: idKey(row.id as string), value: row },
  ]);
}

/**
 * Raw `[key, value]` pairs exactly as `keyv.set` hands them to its adapter (namespace prefix, serializer),
 * for backends whose adapter has no bulk write: the bench writes them in one statement per batch.
 */
export async function keyvRawPairs(keyv: Keyv<TokenRow>, rows: TokenRow[]): Promise<Array<[string, string]>> {
  const pairs: Array<[string, string]> = [];
  for (const { key, value } of keyvEntries(rows)) {
    const serialized = await keyv.serializeData({ value, expires: undefined });
    pairs.push([`${keyv.namespace}:${key}`, serialized as string]);
  }
  return pairs;
}
