/**
 * One process of a cross-process save test: saves `users` new users and `shared` updates of one shared
 * user, interleaved, `inFlight` at once on a pool of that size whose sessions default to `isolation`.
 * Argument: one JSON object (see WorkerJob). Prints a JSON summary (WorkerSummary) on stdout.
 */
import { OAuthToken, TokenStoreError, UserSignature } from '@crm/core';
import pg from 'pg';
import { PostgresTokenStore } from '../../src/index.js';
import { SHARED_USER, type WorkerJob, type WorkerSummary } from './run-saves.js';

const job = JSON.parse(process.argv[2] as string) as WorkerJob;
// libpq's `options` takes backslash-escaped spaces inside one -c value.
const options = job.isolation === undefined ? undefined : `-c default_transaction_isolation=${job.isolation.replaceAll(' ', '\\ ')}`;
const store = new PostgresTokenStore({
  url: job.url,
  schema: job.schema,
  table: job.table,
  operationTimeoutMs: job.operationTimeoutMs,
  poolConfig: { max: job.inFlight, options },
});

const saves: Array<() => OAuthToken> = [];
for (let index = 0; index < job.users; index++) {
  saves.push(
    () =>
      new OAuthToken({
        userSignature: new UserSignature(`user-${job.worker}-${index}@zylker.com:1`),
        clientId: 'client',
        clientSecret: 'secret',
        refreshToken: `refresh-${job.worker}-${index}`,
        accessToken: `access-${job.worker}-${index}`,
        expiryTime: 1764000000000 + index,
      }),
  );
}
for (let index = 0; index < job.shared; index++) {
  // Every shared save sets its own access token and keeps the refresh token: a lost field would show.
  const position = Math.floor(((index + 1) * saves.length) / (job.shared + 1));
  saves.splice(
    position,
    0,
    () =>
      new OAuthToken({
        userSignature: new UserSignature(SHARED_USER),
        refreshToken: 'shared-refresh',
        clientId: 'client',
        clientSecret: 'secret',
        accessToken: `shared-access-${job.worker}-${index}`,
      }),
  );
}

const failures: string[] = [];
let next = 0;
async function lane(): Promise<void> {
  while (next < saves.length) {
    const token = (saves[next++] as () => OAuthToken)();
    await store.saveToken(token).catch((error: unknown) => {
      const sqlState = ((error as Error).cause as { code?: string } | undefined)?.code;
      failures.push(TokenStoreError.is(error) ? `${error.code}${sqlState === undefined ? '' : ` ${sqlState}`}` : String(error));
    });
  }
}
await Promise.all(Array.from({ length: job.inFlight }, lane));
await store.close();
// Read back what a session of this pool defaults to, so a mistyped option cannot pass unnoticed.
const probe = new pg.Client({ connectionString: job.url, options });
await probe.connect();
const isolation = (await probe.query<{ level: string }>('SELECT current_setting($1) AS level', ['default_transaction_isolation'])).rows[0]
  ?.level as string;
await probe.end();
const summary: WorkerSummary = { worker: job.worker, saves: saves.length, failures, isolation };
process.stdout.write(JSON.stringify(summary));
