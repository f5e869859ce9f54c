/**
 * The server's clock as seen from the store, so that a write can carry its deadline in server time (see
 * `WRITE.deadline` in sql.ts): learnt once per pool with one query, never per write.
 */
import type pg from 'pg';
import { SERVER_NOW } from './sql.js';

/** The store's clock in epoch milliseconds: monotonic, so a step of the wall clock does not move deadlines. */
export function clientNow(): number {
  return performance.timeOrigin + performance.now();
}

/** Per pool: server clock minus `clientNow()`, the lowest value the measurement allows. */
const offsets = new WeakMap<pg.Pool, number>();

/**
 * Server time minus client time, in milliseconds, at most what it really is (so a deadline translated with
 * it falls no later on the server than on the client). Measured on `client` the first time, then kept for
 * `pool`; a measurement whose round trip took longer than `maxRoundTripMs` serves this once but is not kept,
 * as its margin would cut every later deadline short.
 */
export async function serverOffset(pool: pg.Pool, client: pg.PoolClient, maxRoundTripMs: number): Promise<number> {
  const known = offsets.get(pool);
  if (known !== undefined) return known;
  const sent = clientNow();
  const { rows } = await client.query<{ now_ms: string }>(SERVER_NOW);
  const received = clientNow();
  const serverMs = Number(rows[0]?.now_ms);
  if (!Number.isFinite(serverMs)) throw new Error('PostgresTokenStore: the server did not tell its time');
  // The server read its clock at some moment between `sent` and `received`: the midpoint's offset less half
  // the round trip is the lowest it can be.
  const offset = serverMs - received;
  if (received - sent <= maxRoundTripMs) offsets.set(pool, offset);
  return offset;
}

/** Measure again on the next write: the server found a deadline passed that the store's clock had not. */
export function forgetServerOffset(pool: pg.Pool): void {
  offsets.delete(pool);
}
