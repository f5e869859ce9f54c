import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TokenStoreError, type TokenStoreErrorCode } from '@crm/core';

/** The exact statement of Zoho's SQLite sample (custom_store_sqlite.py), two spaces included. */
export const ZOHO_CREATE_TABLE =
  'CREATE TABLE  oauthtoken (id varchar(10) NOT NULL,user_name varchar(255), client_id varchar(255), client_secret varchar(255), ' +
  'refresh_token varchar(255), access_token varchar(255), grant_token varchar(255), expiry_time varchar(20), redirect_url varchar(255), ' +
  'api_domain varchar(255), primary key (id))';

/** The sample's insert, with `?` parameters in its column order. */
export const ZOHO_INSERT =
  'insert into oauthtoken (id,user_name,client_id,client_secret,refresh_token,access_token,grant_token,expiry_time,redirect_url,api_domain) ' +
  'values (?,?,?,?,?,?,?,?,?,?);';

const folders: string[] = [];

/** A new temporary folder, removed by `removeTempFolders`. */
export function tempFolder(): string {
  const folder = mkdtempSync(join(tmpdir(), 'crm-sqlite-test-'));
  folders.push(folder);
  return folder;
}

export function removeTempFolders(): void {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
}

/** Runs `action` and returns the TokenStoreError it throws or rejects with; fails the test otherwise. */
export async function storeError(action: () => unknown, code: TokenStoreErrorCode): Promise<TokenStoreError> {
  let thrown: unknown;
  try {
    await action();
  } catch (error) {
    thrown = error;
  }
  if (!TokenStoreError.is(thrown)) throw new Error(`expected a TokenStoreError ${code}, got ${String(thrown)}`);
  expect(thrown.code).toBe(code);
  expect(thrown.store).toBe('SQLiteTokenStore');
  return thrown;
}
