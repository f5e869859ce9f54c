import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encryptedStore, saveSampleSecrets, secretsShownIn } from '@crm/encryption';
import { describeTokenStore } from '@crm/store-conformance/jest';
import { FileTokenStore } from '../src/index.js';
import { createConformanceOptions, TEST_KEYS } from './encrypted-conformance-options.js';

// The whole suite on the encrypted store; the worker processes load the encrypted options too.
describeTokenStore('encryptedStore(FileTokenStore)', {
  ...createConformanceOptions(),
  module: join(__dirname, 'encrypted-conformance-options.ts'),
});

test('the token file holds none of the secrets, in any encoding', async () => {
  const folder = mkdtempSync(join(tmpdir(), 'crm-file-encrypted-'));
  try {
    const filename = join(folder, 'sdk_tokens.txt');
    const store = encryptedStore(new FileTokenStore({ filename }), { keys: TEST_KEYS, activeKeyId: 't1' });
    const { secrets, userName } = await saveSampleSecrets(store);
    await store.close?.();
    const raw = readFileSync(filename).toString('latin1');
    expect(raw).toContain(userName);
    expect(secretsShownIn(raw, secrets)).toEqual([]);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});
