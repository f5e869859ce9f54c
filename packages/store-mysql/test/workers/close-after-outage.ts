/**
 * A process that keeps using a store while its server goes away, then closes it without any guard, as an
 * application's shutdown would. It saves once and prints `ready`, waits for a line on stdin (the parent
 * stops or freezes the server meanwhile), then prints the codes of a lookup and a save, closes the store and
 * prints `closed`. It must then exit 0 on its own, promptly: nothing may keep its event loop alive.
 * Usage: node --import tsx close-after-outage.ts <mysql url> <operationTimeoutMs>
 */
import { once } from 'node:events';
import { OAuthToken, TokenStoreError, UserSignature } from '@crm/core';
import { MySQLTokenStore } from '../../src/index.js';

const [url, timeout] = process.argv.slice(2) as [string, string];
const store = new MySQLTokenStore({ url, table: `crm_close_${process.pid}`, operationTimeoutMs: Number(timeout) });
const token = () => new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'a' });
const code = (error: unknown) => (TokenStoreError.is(error) ? error.code : String(error));

await store.saveToken(token());
process.stdout.write('ready\n');
await once(process.stdin, 'data');
process.stdin.pause(); // stdin must not keep the process alive either
const outcomes = await Promise.all([store.getTokens().then(() => 'ok', code), store.saveToken(token()).then(() => 'ok', code)]);
process.stdout.write(`${outcomes.join(' ')}\n`);
await store.close();
process.stdout.write('closed\n');
