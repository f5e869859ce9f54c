/**
 * The server's clock as seen from the store, so that a write can carry its deadline in server time (the
 * deadline check that starts the write scripts, scripts.ts): learnt with one `TIME` the first time a write
 * needs it, then kept for the client (and every store on it) until the client connects again; never measured
 * per write. The measurement is the store kit's `ServerClock`.
 */

import type { EventEmitter } from 'node:events';
import * as kit from '@crm/core/store-kit';

/** Redis's `TIME` reply ([seconds, microseconds]) in epoch milliseconds. */
export function timeReplyMs(reply: unknown): number {
  const [seconds, micros] = Array.isArray(reply) ? reply.map(Number) : [];
  if (!Number.isFinite(seconds) || !Number.isFinite(micros)) throw new Error('RedisTokenStore: the server did not tell its time');
  return (seconds as number) * 1000 + (micros as number) / 1000;
}
/**
 * Client events after which the server's clock is learnt again: a Redis client connected (again), a Cluster
 * client connected, added or removed a node, or refreshed its slot map (the store's slot may have moved).
 */
const CLOCK_EVENTS = ['ready', '+node', '-node', 'refresh'];

const clocks = new WeakMap<EventEmitter, kit.ServerClock>();

/** The one ServerClock of `client`, shared by every store on it; it forgets its offset on `CLOCK_EVENTS`. */
export function clockOf(client: EventEmitter): kit.ServerClock {
  let clock = clocks.get(client);
  if (clock === undefined) {
    const created = new kit.ServerClock();
    for (const event of CLOCK_EVENTS) client.on(event, () => created.forget());
    clocks.set(client, created);
    clock = created;
  }
  return clock;
}

/**
 * The deadline a write carries to the server, in microseconds of the server's clock: the store's deadline
 * `deadlineMs` (on `kit.clientNow()`'s clock) less a margin of 50 ms, or a tenth of what is left when less, so
 * that a write that runs just in time has its reply on the way before the store gives up on it.
 */
export function serverDeadlineMicros(deadlineMs: number, now: number, offsetMs: number): string {
  const remaining = deadlineMs - now;
  const bound = remaining - Math.min(50, remaining / 10);
  return String(Math.floor((now + bound + offsetMs) * 1000));
}
