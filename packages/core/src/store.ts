import type { OAuthToken } from './token.js';

/**
 * The contract every store implements. `docs/CONTRACT.md` states it in words and
 * `@crm/store-conformance` checks it; `match.ts` holds the rules the methods follow.
 *
 * All methods are async and throw only `TokenStoreError`.
 */
export interface TokenStore {
  /**
   * Looks a token up by the first matching rule (see `lookupKey` in match.ts): user name; else access
   * token without client credentials; else grant token, then refresh token, with both client credentials.
   * On a match, fills every field the input leaves absent from the stored token and returns the same
   * object; otherwise returns null, also when nothing in the input identifies a token.
   */
  findToken(token: OAuthToken): Promise<OAuthToken | null>;

  /**
   * Inserts or updates. Updates the stored token with the same id, else the one `findToken` would match:
   * present fields replace stored ones, absent fields keep theirs. Otherwise inserts, giving a token
   * without id a new one. Either way the input object ends up holding what was stored, id included.
   * Throws INVALID_TOKEN for a token with no access, refresh or grant token, and CONFLICT when the save
   * would give two stored tokens one user name.
   */
  saveToken(token: OAuthToken): Promise<void>;

  /** Removes the token with this id; an unknown id is not an error. */
  deleteToken(id: string): Promise<void>;

  /** Fresh token objects for every stored token, in no promised order. */
  getTokens(): Promise<OAuthToken[]>;

  /** Removes every token this store holds, and nothing else. */
  deleteTokens(): Promise<void>;

  /** The token with this id, or null. */
  findTokenById(id: string): Promise<OAuthToken | null>;

  /** Releases connections, handles and locks the store opened itself. */
  close?(): Promise<void>;
}
