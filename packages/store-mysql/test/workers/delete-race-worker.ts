/**
 * One process of the deletes-racing-saves test: on its own pool (sessions at the given isolation level), runs
 * rounds of saves by user name and by access token mixed with deleteTokens and deleteToken, 12 in flight, and
 * prints the failures as one JSON line. Usage: node --import tsx delete-race-worker.ts <url> <table> <level> <n>
 */
import { OAuthToken, TokenStoreError, UserSignature } from '@crm/core';
import { createPool } from 'mysql2/promise';
import { MySQLTokenStore } from '../../src/index.js';

const [url, table, level, worker] = process.argv.slice(2) as [string, string, string, string];
const pool = createPool({ uri: url, connectionLimit: 12 });
pool.pool.on('connection', (connection) => connection.query(`SET SESSION TRANSACTION ISOLATION LEVEL ${level}`));
const store = new MySQLTokenStore({ pool, table, operationTimeoutMs: 20000 });
const failures: string[] = [];

async function one(n: number): Promise<void> {
  try {
    if (n % 6 === 0) await store.deleteTokens();
    else if (n % 6 === 1) {
      const [first] = await store.getTokens();
      if (first) await store.deleteToken(first.id as string);
    } else if (n % 6 === 2) await store.saveToken(new OAuthToken({ accessToken: `acc-${n % 3}` }));
    else {
      const user = new UserSignature(`user${(n + Number(worker)) % 4}@x:1`);
      await store.saveToken(new OAuthToken({ userSignature: user, refreshToken: `r-${worker}-${n}`, clientId: 'cid', clientSecret: 'cs' }));
    }
  } catch (error) {
    failures.push(TokenStoreError.is(error) ? `${error.code} ${error.operation}` : String(error));
  }
}

for (let round = 0; round < 8; round++) await Promise.all(Array.from({ length: 12 }, (_, n) => one(round * 12 + n)));
await store.close();
await pool.end();
console.log(JSON.stringify({ failures }));
