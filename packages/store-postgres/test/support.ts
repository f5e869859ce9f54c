import { randomBytes } from 'node:crypto';
import { TokenStoreError, type TokenStoreErrorCode } from '@crm/core';
import pg from 'pg';

export { dropTable, postgresUrl } from './conformance-options';

/** The schema every own test works in; each test uses a random table in it. */
export const TEST_SCHEMA = 'crm_store_tests';

export function randomTable(prefix = 'tokens'): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

/** Runs SQL on a connection of its own (to inspect or tamper with a table behind the store's back). */
export async function adminQuery<Row extends Record<string, unknown>>(url: string, text: string, values: unknown[] = []): Promise<Row[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<Row>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** The TokenStoreError code a promise rejects with; fails when it resolves or throws something else. */
export async function errorCode(promise: Promise<unknown>): Promise<TokenStoreErrorCode> {
  try {
    await promise;
  } catch (error) {
    if (TokenStoreError.is(error)) return error.code;
    throw new Error(`expected a TokenStoreError, got ${String(error)}`);
  }
  throw new Error('expected the operation to fail');
}
