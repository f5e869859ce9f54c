/**
 * Files: FileTokenStore, the floor and Zoho's FileStore each on a token file of their own in Zoho's CSV
 * format, written once with the store's own formatter (`formatTokenFile`/`formatTokenLine`); Keyv on
 * keyv-file, its JSON file.
 */
import { closeSync, fsyncSync, openSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileTokenStore, formatTokenFile, formatTokenLine } from '@crm/store-file';
import Keyv from 'keyv';
import { KeyvFile } from 'keyv-file';
import type { Backend, Contender, OperationName, Settings } from '../backend.js';
import { keyvContender, keyvEntries } from '../keyv.js';
import {
  newTokenRow,
  newUserName,
  ourContender,
  pickIndex,
  refreshed,
  type TokenRow,
  tokenId,
  tokenRows,
  toOAuthToken,
  userName,
} from '../tokens.js';
import { FileStore, zohoContender } from '../zoho.js';

/** Past this many tokens, a call that rewrites the whole file (or, for Zoho, reads it) is measured fewer times. */
const LARGE = 10_000;
const SAVES_WHEN_LARGE = 100;
const WHOLE_FILE_CALLS_WHEN_LARGE = 20;
const isSave = (operation: OperationName) => operation.startsWith('saveToken');

/** The token file in the store's format. */
function writeTokenFile(path: string, rows: TokenRow[]): void {
  writeFileSync(path, formatTokenFile(rows.map((row) => formatTokenLine(toOAuthToken(row)))), { mode: 0o600 });
}

/**
 * The floor: what any file store must at least do. Finds are a Map lookup of the parsed file held in
 * memory; saves change that line and write the whole file the safe way (temporary file, fsync, rename,
 * fsync of the folder), without the cross-process lock and the check that the file did not change.
 */
function fileFloor(path: string, rows: TokenRow[], size: number, tag: string): Contender {
  const lines = rows.map((row) => formatTokenLine(toOAuthToken(row)));
  const byUser = new Map<string, number>();
  const byId = new Map<string, number>();
  rows.forEach((row, index) => {
    byUser.set(row.user_name as string, index);
    byId.set(row.id as string, index);
  });
  const folder = join(path, '..');
  const writeAll = () => {
    const temporary = `${path}.tmp`;
    const fd = openSync(temporary, 'w', 0o600);
    try {
      writeSync(fd, formatTokenFile(lines));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, path);
    const folderFd = openSync(folder, 'r');
    try {
      fsyncSync(folderFd);
    } finally {
      closeSync(folderFd);
    }
  };
  return {
    kind: 'floor',
    label: 'a Map of the parsed file; saves: whole file to a temporary file, fsync, rename, fsync of the folder',
    fewer: (operation, size) => (isSave(operation) && size > LARGE ? SAVES_WHEN_LARGE : undefined),
    operations: {
      'findToken (user name)': async (round) => rows[byUser.get(userName(pickIndex(round, size))) as number],
      findTokenById: async (round) => rows[byId.get(tokenId(pickIndex(round, size))) as number],
      'saveToken (update)': async (round) => {
        const index = byUser.get(userName(pickIndex(round, size))) as number;
        const { accessToken, expiryTime } = refreshed(round, 'floor');
        const row = { ...(rows[index] as TokenRow), access_token: accessToken, expiry_time: String(expiryTime) };
        rows[index] = row;
        lines[index] = formatTokenLine(toOAuthToken(row));
        writeAll();
      },
      'saveToken (insert)': async (round) => {
        const row = { ...newTokenRow(newUserName('floor', tag, round), round), id: `f${tag}${round}` };
        byUser.set(row.user_name as string, rows.length);
        byId.set(row.id, rows.length);
        rows.push(row);
        lines.push(formatTokenLine(toOAuthToken(row)));
        writeAll();
      },
    },
  };
}

export async function openFile(settings: Settings): Promise<Backend> {
  return {
    name: 'file',
    version: `local file system, files in ${tmpdir()}`,
    async load(size) {
      const rows = tokenRows(0, size);
      const paths = {
        ours: join(settings.folder, `file-ours-${size}.txt`),
        floor: join(settings.folder, `file-floor-${size}.txt`),
        zoho: join(settings.folder, `file-zoho-${size}.txt`),
        keyv: join(settings.folder, `file-keyv-${size}.json`),
      };
      writeTokenFile(paths.ours, rows);
      writeTokenFile(paths.floor, rows);
      writeTokenFile(paths.zoho, rows);
      // writeDelay 0: `await set()` returns once the file is written, not 100 ms later.
      const keyvFile = new KeyvFile({ filename: paths.keyv, writeDelay: 0 });
      const keyv = new Keyv<TokenRow>({ store: keyvFile, namespace: `bench${settings.tag}` });
      await keyv.setMany(keyvEntries(rows)); // keyv-file writes the file once for all of them

      const store = new FileTokenStore({ filename: paths.ours });
      const ours = ourContender('FileTokenStore', store, size, settings.tag, (operation, size) =>
        isSave(operation) && size > LARGE ? SAVES_WHEN_LARGE : undefined,
      );
      const keyvFewer: Contender['fewer'] = (operation, size) =>
        isSave(operation) && size > LARGE ? WHOLE_FILE_CALLS_WHEN_LARGE : undefined;
      return {
        contenders: [
          ours,
          fileFloor(paths.floor, rows.slice(), size, settings.tag),
          { ...keyvContender(keyv, 'keyv-file (JSON file, whole file written per set)', size, settings.tag), fewer: keyvFewer },
          zohoContender(new FileStore(paths.zoho), "Zoho's FileStore (reads the whole file per call)", size, settings.tag, (_, size) =>
            size > LARGE ? WHOLE_FILE_CALLS_WHEN_LARGE : undefined,
          ),
        ],
        async close() {
          await store.close();
        },
      };
    },
    async close() {},
  };
}
