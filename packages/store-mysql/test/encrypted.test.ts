import { encryptedConformanceOptions, encryptedStore, saveSampleSecrets, secretsShownIn } from '@crm/encryption';
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

test("the rows of Zoho's table hold none of the secrets, in any encoding, and Zoho-sized tokens fit varchar(255)", async () => {
  const url = await mysqlUrl();
  const table = randomTable('crm_encrypted');
  await adminQuery(zohoCreateTable(table));
  const store = encryptedStore(new MySQLTokenStore({ url, table }), { keys: TEST_KEYS, activeKeyId: 't1' });
  const connection = await createConnection(url);
  try {
    const { secrets, userName } = await saveSampleSecrets(store);
    const [rows] = await connection.query(`SELECT * FROM \`${table}\``);
    expect(rows).toHaveLength(5);
    const raw = JSON.stringify(rows);
    expect(raw).toContain(userName);
    expect(secretsShownIn(raw, secrets)).toEqual([]);
  } finally {
    await connection.end();
    await store.close?.();
    await dropTable(table);
  }
});
