/**
 * Saves into a token file whose lock another process holds, so the save times out on the lock, then closes
 * the store and prints both error codes and how many timers are still active. The test checks this process
 * then exits by itself.
 *
 * Arguments: <token file>
 */
import { OAuthToken, TokenStoreError } from '@crm/core';
import { FileTokenStore } from '../../src/index.js';

const store = new FileTokenStore({ filename: process.argv[2], operationTimeoutMs: 300 });
const codeOf = (promise: Promise<unknown>) =>
  promise.then(
    () => 'resolved',
    (error: unknown) => (TokenStoreError.is(error) ? error.code : String(error)),
  );
const saved = await codeOf(store.saveToken(new OAuthToken({ accessToken: 'at' })));
await store.close();
const afterClose = await codeOf(store.getTokens());
const timers = process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;
process.stdout.write(`${saved} ${afterClose} timers: ${timers}\n`);
