/**
 * One saving process of the cross-process tests, driven by run-saves.ts over stdin/stdout, one JSON line each
 * way. `open` makes a pool whose sessions default to the given isolation level (set per connection, never
 * server-wide) and a store on the round's table, and answers once it is warm; `save` runs the round's saves
 * `inFlight` at a time and answers with the ids handed back and the failures; `close` ends it.
 * Usage: node --import tsx save-worker.ts <mysql url> <worker number>
 */
import { createInterface } from 'node:readline';
import { OAuthToken, TokenStoreError, UserSignature } from '@crm/core';
import { createPool, type Pool } from 'mysql2/promise';
import { MySQLTokenStore } from '../../src/index.js';

export interface OpenCommand {
  type: 'open';
  table: string;
  /** `READ COMMITTED`, `REPEATABLE READ`, `SERIALIZABLE`, or null for the server's default. */
  isolation: string | null;
}
export interface SaveCommand {
  type: 'save';
  users: number;
  shared: number;
  inFlight: number;
}
export interface SaveReport {
  /** The id each save handed back, in save order (null for a failed save). */
  ids: (string | null)[];
  failures: string[];
  /** What the pool's sessions really defaulted to, read back from the server. */
  isolation: string;
}

export const SHARED_USER = 'shared@zylker.com:1';
export const userName = (worker: number, n: number) => `worker-${worker}-user-${n}@zylker.com:1`;

/** The round's saves: the shared user's first two lead (its first saves race in every process), the rest spread out. */
export function roundSaves(worker: number, { users, shared }: { users: number; shared: number }): OAuthToken[] {
  const token = (name: string, label: string, expiryTime: number) =>
    new OAuthToken({
      userSignature: new UserSignature(name),
      accessToken: `access-${label}`,
      refreshToken: `refresh-${label}`,
      clientId: 'client',
      clientSecret: 'secret',
      expiryTime,
    });
  const sharedSaves = Array.from({ length: shared }, (_, n) => token(SHARED_USER, `${worker}-s${n}`, n));
  const saves = sharedSaves.splice(0, 2);
  const every = Math.ceil(users / (sharedSaves.length + 1));
  for (let n = 0; n < users; n++) {
    saves.push(token(userName(worker, n), `${worker}-u${n}`, n));
    if ((n + 1) % every === 0 && sharedSaves.length > 0) saves.push(sharedSaves.shift()!);
  }
  return [...saves, ...sharedSaves];
}

async function main(): Promise<void> {
  const [url, workerArg] = process.argv.slice(2) as [string, string];
  const worker = Number(workerArg);
  let pool: Pool | null = null;
  let store: MySQLTokenStore | null = null;
  const reply = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);
  for await (const line of createInterface({ input: process.stdin })) {
    const command = JSON.parse(line) as OpenCommand | SaveCommand | { type: 'close' };
    if (command.type === 'open') {
      await store?.close();
      await pool?.end();
      const { isolation } = command;
      pool = createPool({ uri: url, connectionLimit: 10 });
      if (isolation !== null) {
        pool.pool.on('connection', (connection) => {
          connection.query(`SET SESSION TRANSACTION ISOLATION LEVEL ${isolation}`);
        });
      }
      store = new MySQLTokenStore({ pool, table: command.table, operationTimeoutMs: 30000 });
      await store.getTokens(); // learns the table now, not during the race
      reply({ ready: true });
    } else if (command.type === 'save') {
      const saves = roundSaves(worker, command);
      const ids: (string | null)[] = saves.map(() => null);
      const failures: string[] = [];
      let next = 0;
      const lane = async () => {
        for (let n = next++; n < saves.length; n = next++) {
          try {
            await store!.saveToken(saves[n]!);
            ids[n] = saves[n]!.id;
          } catch (error) {
            const cause = (error as Error).cause as { code?: string } | undefined;
            failures.push(TokenStoreError.is(error) ? `${error.code} ${cause?.code ?? ''}`.trim() : String(error));
          }
        }
      };
      await Promise.all(Array.from({ length: command.inFlight }, lane));
      // MySQL 8 and MariaDB 11.1+ name it transaction_isolation; older MariaDB only tx_isolation.
      const [rows] = await pool!
        .query('SELECT @@SESSION.transaction_isolation AS level')
        .catch(() => pool!.query('SELECT @@SESSION.tx_isolation AS level'));
      reply({ ids, failures, isolation: (rows as { level: string }[])[0]!.level } satisfies SaveReport);
    } else {
      break;
    }
  }
  await store?.close();
  await pool?.end();
}

if (process.argv[1]?.endsWith('save-worker.ts')) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
