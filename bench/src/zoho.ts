/** Zoho's own stores (@zohocrm/typescript-sdk-8.0), called directly with their OAuthToken and UserSignature. */
import { createRequire } from 'node:module';
import type { Contender } from './backend.js';
import { newTokenRow, newUserName, pickIndex, refreshed, tokenId, userName } from './tokens.js';

/** Their TokenStore as their SDK calls it. */
export interface ZohoStore {
  findToken(token: unknown): Promise<unknown>;
  findTokenById(id: string): Promise<unknown>;
  saveToken(token: unknown): Promise<unknown>;
}

interface ZohoToken {
  setAccessToken(value: string | null): void;
  setExpiresIn(value: string | null): void;
  setAPIDomain(value: string | null): void;
}

const require = createRequire(import.meta.url);
const SDK = '@zohocrm/typescript-sdk-8.0/dist';
// The two modules their stores use, not the SDK's root module (which loads thousands of API modules).
const { OAuthToken } = require(`${SDK}/models/authenticator/oauth_token.js`) as {
  OAuthToken: new (...args: Array<string | null | object>) => ZohoToken;
};
const { UserSignature } = require(`${SDK}/routes/user_signature.js`) as { UserSignature: new (name: string) => object };
export const { FileStore } = require(`${SDK}/models/authenticator/store/file_store.js`) as {
  FileStore: new (path: string) => ZohoStore;
};
export const { DBStore } = require(`${SDK}/models/authenticator/store/db_store.js`) as {
  DBStore: new (host: string, database: string, table: string, user: string, password: string, port: string) => ZohoStore;
};

/** A token of theirs: (clientID, clientSecret, grantToken, refreshToken, redirectURL, id, accessToken, userSignature). */
function zohoToken(name: string): ZohoToken {
  return new OAuthToken(null, null, null, null, null, null, null, new UserSignature(name));
}

export function zohoContender(store: ZohoStore, label: string, size: number, tag: string, fewer: Contender['fewer']): Contender {
  return {
    kind: 'zoho',
    label,
    fewer,
    operations: {
      'findToken (user name)': (round) => store.findToken(zohoToken(userName(pickIndex(round, size)))),
      findTokenById: (round) => store.findTokenById(tokenId(pickIndex(round, size))),
      'saveToken (update)': (round) => {
        const token = zohoToken(userName(pickIndex(round, size)));
        const { accessToken, expiryTime } = refreshed(round, 'zoho');
        token.setAccessToken(accessToken);
        token.setExpiresIn(String(expiryTime));
        return store.saveToken(token);
      },
      'saveToken (insert)': (round) => {
        const row = newTokenRow(newUserName('zoho', tag, round), round);
        const token = new OAuthToken(
          row.client_id,
          row.client_secret,
          null,
          row.refresh_token,
          row.redirect_url,
          null,
          row.access_token,
          new UserSignature(row.user_name as string),
        );
        token.setExpiresIn(row.expiry_time);
        token.setAPIDomain(row.api_domain);
        return store.saveToken(token);
      },
    },
  };
}
