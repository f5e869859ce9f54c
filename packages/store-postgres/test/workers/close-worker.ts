/**
 * Runs a save and a find against a server that does not answer, closes the store and tries once more.
 * Prints the error codes as JSON. The test checks that this process then exits by itself: close() must
 * leave no socket or timer behind. Arguments: url, operationTimeoutMs.
 */
import { OAuthToken, TokenStoreError, UserSignature } from '@crm/core';
import { PostgresTokenStore } from '../../src/index.js';

const [url, timeoutMs] = process.argv.slice(2) as [string, string];
const store = new PostgresTokenStore({ url, operationTimeoutMs: Number(timeoutMs) });
const code = (promise: Promise<unknown>) =>
  promise.then(
    () => 'resolved',
    (error: unknown) => (TokenStoreError.is(error) ? error.code : String(error)),
  );
const token = new OAuthToken({ userSignature: new UserSignature('close@x:1'), refreshToken: 'r' });
const save = await code(store.saveToken(token));
const find = await code(store.findToken(token));
await store.close();
const afterClose = await code(store.getTokens());
process.stdout.write(JSON.stringify({ save, find, afterClose }));
