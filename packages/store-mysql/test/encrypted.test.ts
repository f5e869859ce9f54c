import { randomBytes } from 'node:crypto';
import { OAuthToken, type TokenStore, UserSignature } from '@crm/core';
import { encryptedConformanceOptions, encryptedStore } from '@crm/encryption';
import type { ConformanceOptions } from '@crm/store-conformance';
import { describeTokenStore } from '@crm/store-conformance/jest';
import { createConnection } from 'mysql2/promise';
import { MySQLTokenStore } from '../src/index.js';
import { adminQuery, createZohoTableOptions, dropTable, mysqlUrl, randomTable, zohoCreateTable } from './conformance-options.js';
import { createConformanceOptions, TEST_KEYS } from './encrypted-conformance-options.js';

// The whole suite on the encrypted store, on a table the store creates and on Zoho DBStore's varchar(255)
// table (its declared limits become the longest plaintext whose sealed value fits). Workers load the
// encrypted options module; `openShared` there opens either table.
const optionsModule = require.resolve('./encrypted-conformance-options');
describeTokenStore('encryptedStore(MySQLTokenStore)', { ...createConformanceOptions(), module: optionsModule });
describeTokenStore("encryptedStore(MySQLTokenStore) on Zoho DBStore's table", {
  ...(encryptedConformanceOptions(createZohoTableOptions(), { keys: TEST_KEYS, activeKeyId: 't1' }) as unknown as ConformanceOptions),
  module: optionsModule,
});

function sampleToken(user: string): OAuthToken {
  const secret = (kind: string) => `1000.${kind}${randomBytes(16).toString('hex')}`;
  return new OAuthToken({
    userSignature: new UserSignature(user),
    clientId: '1000.CLIENT',
    clientSecret: secret('cs'),
    refreshToken: secret('rt'),
    accessToken: secret('at'),
    grantToken: secret('gt'),
    expiryTime: Date.now() + 3_600_000,
  });
}

/** Saves five tokens and updates one through the encrypted store; returns every secret value it ever held. */
async function saveSamples(store: TokenStore): Promise<{ secrets: string[]; userName: string }> {
  const tokens = Array.from({ length: 5 }, (_, index) => sampleToken(`user-${index}-${randomBytes(3).toString('hex')}@zylker.com`));
  for (const token of tokens) await store.saveToken(token);
  const secrets = tokens.flatMap((token) => [token.clientSecret, token.accessToken, token.refreshToken, token.grantToken] as string[]);
  const update = new OAuthToken({ id: tokens[0]!.id, accessToken: `1000.at${randomBytes(16).toString('hex')}` });
  await store.saveToken(update);
  secrets.push(update.accessToken as string);
  return { secrets, userName: tokens[0]!.userSignature!.name };
}

/** Fails when storage shows a secret raw, in base64, base64url or hex. */
function expectNoSecrets(raw: string, secrets: string[]): void {
  for (const secret of secrets) {
    const bytes = Buffer.from(secret, 'utf8');
    for (const form of [
      secret,
      bytes.toString('base64'),
      bytes.toString('base64url'),
      bytes.toString('hex'),
      bytes.toString('hex').toUpperCase(),
    ]) {
      expect(raw).not.toContain(form);
    }
  }
}

test("the rows of Zoho's table hold none of the secrets, in any encoding, and Zoho-sized tokens fit varchar(255)", async () => {
  const url = await mysqlUrl();
  const table = randomTable('crm_encrypted');
  await adminQuery(zohoCreateTable(table));
  const store = encryptedStore(new MySQLTokenStore({ url, table }), { keys: TEST_KEYS, activeKeyId: 't1' });
  const connection = await createConnection(url);
  try {
    const { secrets, userName } = await saveSamples(store);
    const [rows] = await connection.query(`SELECT * FROM \`${table}\``);
    expect(rows).toHaveLength(5);
    const raw = JSON.stringify(rows);
    expect(raw).toContain(userName);
    expectNoSecrets(raw, secrets);
  } finally {
    await connection.end();
    await store.close?.();
    await dropTable(table);
  }
});
