/**
 * The conformance options of the example store: what `describeTokenStore`, `runConformance` and the
 * `crm-store-conformance` command need. No test-runner globals here: worker processes of the `processes`
 * group import this module too.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ConformanceOptions } from '@crm/store-conformance';
import { JsonFileTokenStore } from './json-file-store.js';

/** What `share` hands to other processes: the file is the whole storage. */
interface SharedFile {
  filename: string;
}

/**
 * The processes group keeps 16 saves from 4 processes waiting for one lock file, each holding it for an
 * fsync; on a busy test machine one unlucky waiter can need longer than the default 5 s.
 */
const operationTimeoutMs = 30_000;

export function createConformanceOptions(): ConformanceOptions<JsonFileTokenStore> {
  const open = (filename: string) => new JsonFileTokenStore({ filename, operationTimeoutMs });
  return {
    // Each store gets a folder of its own, so cases never see each other's files.
    create: () => open(join(mkdtempSync(join(tmpdir(), 'crm-json-store-')), 'tokens.json')),
    destroy: (store) => rmSync(dirname(store.filename), { recursive: true, force: true }),
    reopen: (store) => open(store.filename),
    // A directory where the save writes its temporary file: the next save fails in the file system itself.
    injectFault: (store) => mkdirSync(`${store.filename}.tmp`),
    share: (store): SharedFile => ({ filename: store.filename }),
    openShared: (description) => open((description as SharedFile).filename),
    // This file: worker processes of the `processes` group import it and call openShared.
    module: fileURLToPath(import.meta.url),
  };
}

export default createConformanceOptions;
