/**
 * The server's clock as seen from the store, so that a write can carry its deadline in server time (see
 * `WRITE.deadline` in sql.ts): learnt once per pool with one query, never per write. The measurement is the
 * store kit's `ServerClock`.
 */
import * as kit from '@crm/core/store-kit';
import type pg from 'pg';
import { SERVER_NOW } from './sql.js';

/** One clock per pool: every store on a pool talks to the same server. */
const clocks = new WeakMap<pg.Pool, kit.ServerClock>();

function clockOf(pool: pg.Pool): kit.ServerClock {
  let clock = clocks.get(pool);
  if (clock === undefined) {
    clock = new kit.ServerClock();
    clocks.set(pool, clock);
  }
  return clock;
}

/**
 * Server time minus client time (`kit.clientNow()`), in milliseconds, at most what it really is. Measured on
 * `client` the first time, then kept for `pool`; a measurement whose round trip took longer than
 * `maxRoundTripMs` serves this once but is not kept.
 */
export async function serverOffset(pool: pg.Pool, client: pg.PoolClient, maxRoundTripMs: number): Promise<number> {
  const clock = clockOf(pool);
  const known = clock.offsetMs;
  if (known !== null) return known;
  return clock.measure(async () => {
    const { rows } = await client.query<{ now_ms: string }>(SERVER_NOW);
    const serverMs = Number(rows[0]?.now_ms);
    if (!Number.isFinite(serverMs)) throw new Error('PostgresTokenStore: the server did not tell its time');
    return serverMs;
  }, maxRoundTripMs);
}

/** Measure again on the next write: the server found a deadline passed that the store's clock had not. */
export function forgetServerOffset(pool: pg.Pool): void {
  clocks.get(pool)?.forget();
}
