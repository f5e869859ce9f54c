import { join } from 'node:path';
import { encryptedStore, saveSampleSecrets, secretsShownIn } from '@crm/encryption';
import { describeTokenStore } from '@crm/store-conformance/jest';
import { PostgresTokenStore } from '../src/index.js';
import { adminQuery, dropTable, postgresUrl, randomTable, TEST_SCHEMA } from './conformance-options.js';
import { createConformanceOptions, TEST_KEYS } from './encrypted-conformance-options.js';

// The whole suite on the encrypted store; the worker processes load the encrypted options too.
describeTokenStore('encryptedStore(PostgresTokenStore)', {
  ...createConformanceOptions(),
  module: join(__dirname, 'encrypted-conformance-options.ts'),
});

test('the table rows hold none of the secrets, in any encoding', async () => {
  const url = await postgresUrl();
  const table = randomTable('encrypted');
  const store = encryptedStore(new PostgresTokenStore({ url, schema: TEST_SCHEMA, table }), { keys: TEST_KEYS, activeKeyId: 't1' });
  try {
    const { secrets, userName } = await saveSampleSecrets(store);
    const rows = await adminQuery(url, `SELECT * FROM "${TEST_SCHEMA}"."${table}"`);
    expect(rows).toHaveLength(5);
    const raw = JSON.stringify(rows);
    expect(raw).toContain(userName);
    expect(secretsShownIn(raw, secrets)).toEqual([]);
  } finally {
    await store.close?.();
    await dropTable(url, TEST_SCHEMA, table);
  }
});
