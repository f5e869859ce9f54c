/**
 * One of the processes of the multi-process test: 250 saves of its own users and 50 saves to one shared user,
 * interleaved and 10 at a time. Prints the ids it was given as JSON.
 * Usage: node --import tsx save-worker.ts <mysql url> <table> <worker number>
 */
import { OAuthToken, UserSignature } from '@crm/core';
import { MySQLTokenStore } from '../../src/index.js';

const [url, table, worker] = process.argv.slice(2) as [string, string, string];
const store = new MySQLTokenStore({ uri: url, table, operationTimeoutMs: 30000 });
const saves: OAuthToken[] = [];
for (let n = 0; n < 300; n++) {
  const shared = n % 6 === 5; // 50 of 300
  saves.push(
    new OAuthToken({
      userSignature: new UserSignature(shared ? 'shared-user' : `worker-${worker}-user-${n}`),
      accessToken: `access-${worker}-${n}`,
      refreshToken: `refresh-${worker}-${n}`,
      clientId: 'client',
      clientSecret: 'secret',
      expiryTime: n,
    }),
  );
}
try {
  for (let start = 0; start < saves.length; start += 10) {
    await Promise.all(saves.slice(start, start + 10).map((token) => store.saveToken(token)));
  }
  process.stdout.write(JSON.stringify(saves.map((token) => token.id)));
} finally {
  await store.close();
}
