/**
 * A process that opens a store, saves once, waits for its parent to stop the server, fails one call, then
 * closes the store and must end by itself at once: close() may leave nothing keeping the event loop alive.
 * Prints `connected`, then `closing` and `closed <ms close() took>`. Usage: tsx close-after-outage.ts <url> <call first: yes|no>
 */
import { OAuthToken, TokenStoreError } from '@crm/core';
import { RedisTokenStore } from '../../src/index.js';

const [url, callFirst] = process.argv.slice(2) as [string, string];
const store = new RedisTokenStore({ url, prefix: 'close-after-outage', operationTimeoutMs: 1000 });
await store.saveToken(new OAuthToken({ accessToken: 'a' }));
process.stdout.write('connected\n');
await new Promise((resolve) => process.stdin.once('data', resolve));
process.stdin.destroy();
if (callFirst === 'yes') {
  const error = await store.findTokenById('x').catch((caught: unknown) => caught);
  if (!TokenStoreError.is(error) || error.code !== 'BACKEND_UNAVAILABLE')
    throw new Error(`expected BACKEND_UNAVAILABLE, got ${String(error)}`);
}
process.stdout.write('closing\n');
const started = Date.now();
await store.close();
process.stdout.write(`closed ${Date.now() - started}\n`);
