/**
 * A process that opens a store, saves once, waits for its parent to stop the server, fails one call, then
 * closes the store and must end by itself at once: close() may leave nothing keeping the event loop alive.
 * Prints `connected`, then `closing` and `closed <ms close() took> <handles left, JSON>`. Usage: tsx close-after-outage.ts <url> <call first: yes|no>
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
const closeMs = Date.now() - started;
// What could still keep this process alive: no socket and no timer may be left (stdout's pipe is the parent's).
const left = process.getActiveResourcesInfo().filter((kind) => kind !== 'PipeWrap' && kind !== 'TTYWrap');
process.stdout.write(`closed ${closeMs} ${JSON.stringify(left)}\n`);
