import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { OAuthToken, type TokenStore, UserSignature } from '@crm/core';
import { encryptedStore } from '@crm/encryption';
import { describeTokenStore } from '@crm/store-conformance/jest';
import { PostgresTokenStore } from '../src/index.js';
import { adminQuery, dropTable, postgresUrl, randomTable, TEST_SCHEMA } from './conformance-options.js';
import { createConformanceOptions, TEST_KEYS } from './encrypted-conformance-options.js';

// The whole suite on the encrypted store; the worker processes load the encrypted options too.
describeTokenStore('encryptedStore(PostgresTokenStore)', {
  ...createConformanceOptions(),
  module: join(__dirname, 'encrypted-conformance-options.ts'),
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

test('the table rows hold none of the secrets, in any encoding', async () => {
  const url = await postgresUrl();
  const table = randomTable('encrypted');
  const store = encryptedStore(new PostgresTokenStore({ url, schema: TEST_SCHEMA, table }), { keys: TEST_KEYS, activeKeyId: 't1' });
  try {
    const { secrets, userName } = await saveSamples(store);
    const rows = await adminQuery(url, `SELECT * FROM "${TEST_SCHEMA}"."${table}"`);
    expect(rows).toHaveLength(5);
    const raw = JSON.stringify(rows);
    expect(raw).toContain(userName);
    expectNoSecrets(raw, secrets);
  } finally {
    await store.close?.();
    await dropTable(url, TEST_SCHEMA, table);
  }
});
