/**
 * What each part of a PostgreSQL save of a refreshed token costs: the raw driver's UPDATE (the bench's floor),
 * the store's own save statement alone, then with the transaction and the deadline it is sent in, then the
 * store itself, all interleaved in one run on one table of `--tokens` rows (default 100,000). The store's
 * statements and their values are captured from the store itself, so the steps run exactly what it sends.
 * Medians of `--operations` calls (default 1,000) per step, in µs, and each step's ratio to the floor.
 *
 *   pnpm --filter @crm/bench ladder:postgres [-- --tokens 1000 --operations 2000]
 */
import { randomBytes } from 'node:crypto';
import { OAuthToken, UserSignature } from '@crm/core';
import { PostgresTokenStore } from '@crm/store-postgres';
import { ensurePostgres } from '@crm/test-services/postgres';
import pg from 'pg';
import { loadTokens } from './backends/postgres.js';
import { type LadderStep, ladderOption, runLadder, stepValues, storeStep } from './ladder.js';
import { pickIndex, userName } from './tokens.js';

/** One step of the store's write pipeline, as the store hands it to pg (src/pipeline.ts of the store). */
interface CapturedStep {
  statement: { name: string; text: string };
  values: ReadonlyArray<string | null>;
}
/** The store's pipeline object: its steps, and its class, to send the same kind of pipeline again. */
interface CapturedPipeline {
  steps: CapturedStep[];
  constructor: new (steps: CapturedStep[], rowsOf: number, done: (error: Error | null, rows: unknown[]) => void) => pg.Submittable;
}

const SIZE = ladderOption('tokens', 100_000);
const OPERATIONS = ladderOption('operations', 1_000);

const service = await ensurePostgres();
const table = `ladder_${randomBytes(4).toString('hex')}`;
const admin = new pg.Client({ connectionString: service.url });
await admin.connect();
const pool = new pg.Pool({ connectionString: service.url });
/** The pool of the step that times a pool's checkout without the store: a pool of its own, as every step has. */
const stepPool = new pg.Pool({ connectionString: service.url });
const store = new PostgresTokenStore({ pool, table });
/** One connection per step: every step's connection then sits idle for the same time between its turns. */
const clients = Array.from({ length: 4 }, () => new pg.Client({ connectionString: service.url }));
try {
  const version = (await admin.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version;
  await store.migrate();
  await loadTokens(admin, table, SIZE);
  await admin.query(`ANALYZE "${table}"`);

  // Capture the pipeline of one save by user name: marker values show where the round's values go.
  const MARK_ACCESS = `marker-access-${randomBytes(4).toString('hex')}`;
  const MARK_EXPIRY = 1_234_567_890_123;
  let captured: CapturedPipeline | null = null;
  const connect = pool.connect.bind(pool);
  (pool as unknown as { connect: () => Promise<pg.PoolClient> }).connect = async () => {
    const got = await connect();
    const query = got.query;
    (got as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const [first] = args;
      if (first !== null && typeof first === 'object' && Array.isArray((first as { steps?: unknown }).steps)) {
        captured = first as CapturedPipeline;
      }
      return (query as (...args: unknown[]) => unknown).apply(got, args);
    };
    const release = got.release;
    got.release = (...args: Parameters<typeof release>) => {
      delete (got as unknown as { query?: unknown }).query;
      got.release = release;
      return release.apply(got, args);
    };
    return got;
  };
  await store.saveToken(
    new OAuthToken({ userSignature: new UserSignature(userName(0)), accessToken: MARK_ACCESS, expiryTime: MARK_EXPIRY }),
  );
  (pool as unknown as { connect: unknown }).connect = connect;
  const pipeline = captured as CapturedPipeline | null;
  if (pipeline === null || pipeline.steps.length !== 4) throw new Error('the store sent no pipeline of four steps for a save by user name');
  const [begin, deadline, save, commit] = pipeline.steps as [CapturedStep, CapturedStep, CapturedStep, CapturedStep];
  const Pipeline = pipeline.constructor;

  for (const client of clients) await client.connect();
  const [floorClient, ...stepClients] = clients as [pg.Client, pg.Client, pg.Client, pg.Client];
  const serverNowMs = async () =>
    Number((await floorClient.query<{ now: string }>('SELECT (1000 * extract(epoch FROM clock_timestamp()))::text AS now')).rows[0]?.now);
  const farDeadline = String(Math.floor((await serverNowMs()) + 3_600_000));

  /**
   * The save statement's values for round `round` of step `step`: the captured ones with the round's user,
   * and an access token and expiry of the step's own (an UPDATE to equal values still writes a new row
   * version in PostgreSQL, but the steps stay apart anyway).
   */
  const saveValues = (round: number, step: number) => {
    const { accessToken, expiryTime } = stepValues(round, step);
    return save.values.map((value) =>
      value === userName(0)
        ? userName(pickIndex(round, SIZE))
        : value === MARK_ACCESS
          ? accessToken
          : value === String(MARK_EXPIRY)
            ? String(expiryTime)
            : value,
    );
  };
  if (!save.values.includes(MARK_ACCESS) || !save.values.includes(String(MARK_EXPIRY)) || !save.values.includes(userName(0))) {
    throw new Error('the captured save statement does not carry the user name, access token and expiry as values');
  }
  const send = (client: pg.Client, steps: CapturedStep[], rowsOf: number) =>
    new Promise<void>((resolve, reject) => {
      client.query(new Pipeline(steps, rowsOf, (error) => (error === null ? resolve() : reject(error))));
    });
  const withValues = (step: CapturedStep, values: ReadonlyArray<string | null>): CapturedStep => ({ statement: step.statement, values });

  const steps: LadderStep[] = [
    {
      name: 'floor: UPDATE access_token, expiry_time WHERE user_name = $3',
      run: (round) => {
        const { accessToken, expiryTime } = stepValues(round, 0);
        return floorClient.query({
          name: 'ladder_floor',
          text: `UPDATE "${table}" SET access_token = $1, expiry_time = $2 WHERE user_name = $3`,
          values: [accessToken, expiryTime, userName(pickIndex(round, SIZE))],
        });
      },
    },
    {
      name: "the store's save statement alone, in a transaction of its own (merge, absent fields kept, RETURNING the row)",
      run: (round) => send(stepClients[0] as pg.Client, [withValues(save, saveValues(round, 1))], 0),
    },
    {
      name: '+ BEGIN ISOLATION LEVEL READ COMMITTED ... COMMIT around it, one round trip (any isolation level)',
      run: (round) => send(stepClients[1] as pg.Client, [begin, withValues(save, saveValues(round, 2)), commit], 1),
    },
    {
      name: "+ the server-clock deadline and the statement's time bound: the store's pipeline (no late write)",
      run: (round) =>
        send(stepClients[2] as pg.Client, [begin, withValues(deadline, [farDeadline]), withValues(save, saveValues(round, 3)), commit], 2),
    },
    {
      name: "the store's pipeline on a connection taken from a pool and given back per save, as the store does",
      run: async (round) => {
        const got = await stepPool.connect();
        try {
          await send(
            got as unknown as pg.Client,
            [begin, withValues(deadline, [farDeadline]), withValues(save, saveValues(round, 5)), commit],
            2,
          );
        } finally {
          got.release();
        }
      },
    },
    storeStep('the store: saveToken (pool checkout, argument checks, time bound, row to token, write-back)', store, SIZE, 4),
  ];
  await runLadder(`PostgreSQL ${version}, ${SIZE.toLocaleString('en')} tokens`, steps, OPERATIONS);
} finally {
  for (const client of clients) await client.end().catch(() => {});
  await store.close();
  await pool.end();
  await stepPool.end();
  await admin.query(`DROP TABLE IF EXISTS "${table}"`);
  await admin.end();
  await service.stop();
}
