import { type OAuthToken, type TokenStore, TokenStoreError } from '@crm/core';
import { newZohoToken, tokenFromZohoArgument, writeIntoZohoToken } from './convert.js';
import { type BridgedZohoTokenStore, defaultSdk, type ZohoOAuthToken, type ZohoSdk } from './zoho-sdk.js';

/** The name errors of the bridge carry in `store`. */
export const TO_ZOHO_STORE_NAME = 'ZohoTokenStoreBridge';

/**
 * Our store as the `TokenStore` of Zoho's official SDK: pass the result to the SDK's
 * `InitializeBuilder().store(...)`. The SDK's tokens are converted to ours and back, and Zoho's conventions
 * kept: `findToken` fills the given token's empty fields and returns that same object (null on a miss),
 * `saveToken` writes what was stored, id included, into the given token, `findTokenById` returns a token of
 * the SDK's own class. The lookups, the merge and the ids are our store's (docs/CONTRACT.md of `@crm/core`).
 *
 * `sdk` is the SDK module whose classes to build tokens with (default: the TypeScript SDK). With the Node.js
 * SDK pass its module: its `InitializeBuilder` accepts only instances of its own `TokenStore` class, and the
 * returned object is one.
 */
export function toZohoTokenStore(store: TokenStore, sdk: ZohoSdk = defaultSdk()): BridgedZohoTokenStore {
  for (const method of ['findToken', 'findTokenById', 'saveToken', 'deleteToken', 'getTokens', 'deleteTokens'] as const) {
    if (typeof store?.[method] !== 'function') {
      throw TokenStoreError.invalidArgument({ store: TO_ZOHO_STORE_NAME, operation: 'open' }, `the store has no ${method} method`);
    }
  }
  if (typeof sdk?.OAuthToken !== 'function' || typeof sdk.UserSignature !== 'function') {
    throw TokenStoreError.invalidArgument(
      { store: TO_ZOHO_STORE_NAME, operation: 'open' },
      'sdk must hold the OAuthToken and UserSignature classes',
    );
  }
  const methods: BridgedZohoTokenStore = {
    async findToken(token: ZohoOAuthToken): Promise<ZohoOAuthToken | null> {
      const ours = tokenFromZohoArgument(token, TO_ZOHO_STORE_NAME, 'findToken');
      const found = await store.findToken(ours);
      if (found === null) return null;
      // Our store kept the input's fields and filled the others: that is Zoho's merge, written back into theirs.
      writeIntoZohoToken(token, found, sdk);
      return token;
    },

    /**
     * Zoho's own stores throw for an unknown id, and the Node.js SDK's `getToken` dereferences the result
     * without a check: an unknown id is an error here too, not null.
     */
    async findTokenById(id: string): Promise<ZohoOAuthToken> {
      const found = await store.findTokenById(id);
      if (found === null)
        throw TokenStoreError.invalidArgument(
          { store: TO_ZOHO_STORE_NAME, operation: 'findTokenById' },
          'Given ID is invalid (no token has this id)',
        );
      return newZohoToken(found, sdk);
    },

    async saveToken(token: ZohoOAuthToken): Promise<void> {
      const ours: OAuthToken = tokenFromZohoArgument(token, TO_ZOHO_STORE_NAME, 'saveToken');
      await store.saveToken(ours); // after the save, `ours` holds exactly what was stored, id included
      writeIntoZohoToken(token, ours, sdk);
    },

    async deleteToken(id: string): Promise<void> {
      await store.deleteToken(id);
    },

    async getTokens(): Promise<ZohoOAuthToken[]> {
      return (await store.getTokens()).map((token) => newZohoToken(token, sdk));
    },

    async deleteTokens(): Promise<void> {
      await store.deleteTokens();
    },
  };
  // The Node.js SDK checks `store instanceof TokenStore` against its own base class.
  const base = typeof sdk.TokenStore === 'function' ? (sdk.TokenStore as { prototype: object }).prototype : Object.prototype;
  return Object.assign(Object.create(base) as object, methods) as BridgedZohoTokenStore;
}
