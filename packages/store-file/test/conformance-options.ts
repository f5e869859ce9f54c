/**
 * The conformance options of FileTokenStore: what `describeTokenStore`, `runConformance` and the
 * `crm-store-conformance` command need. No jest globals here: worker processes of the `processes` group
 * import this module too, and call `openShared`.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ConformanceOptions } from '@crm/store-conformance';
import { FileTokenStore } from '../src/index.js';

/** What `share` hands to other processes: the token file is the whole storage. */
interface SharedFile {
  filename: string;
}

/** Each store gets a fresh folder of its own under the system's temporary folder; destroy removes it. */
export function createConformanceOptions(): ConformanceOptions<FileTokenStore> {
  return {
    create: () => new FileTokenStore({ filename: join(mkdtempSync(join(tmpdir(), 'crm-store-file-')), 'sdk_tokens.txt') }),
    reopen: (store) => new FileTokenStore({ filename: store.filename }),
    destroy: (store) => rmSync(dirname(store.filename), { recursive: true, force: true }),
    // A folder where the lock file goes: the next change fails in the file system itself (EISDIR reading the
    // lock); reads, which take no lock, still work. Root ignores file modes, so chmod would not do.
    injectFault: (store) => mkdirSync(store.lockFilename),
    share: (store): SharedFile => ({ filename: store.filename }),
    openShared: (description) => new FileTokenStore({ filename: (description as SharedFile).filename }),
  };
}

export default createConformanceOptions;
