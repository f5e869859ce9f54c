import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ConformanceOptions } from '@crm/store-conformance';
import { FileTokenStore } from '../src/index.js';

/** Each store gets its own fresh folder under the system's temporary folder; destroy removes it. */
export function createConformanceOptions(): ConformanceOptions<FileTokenStore> {
  return {
    create: () => new FileTokenStore({ path: join(mkdtempSync(join(tmpdir(), 'crm-store-file-')), 'sdk_tokens.txt') }),
    reopen: (store) => new FileTokenStore({ path: store.path }),
    destroy: (store) => rmSync(dirname(store.path), { recursive: true, force: true }),
  };
}
