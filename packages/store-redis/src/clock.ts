/**
 * The server's clock as seen from the store, so that a write can carry its deadline in server time (the
 * deadline check that starts the write scripts, scripts.ts): learnt with one `TIME` the first time a write
 * needs it, then kept for the client (and every store on it) until the client connects again; never measured
 * per write.
 */
import type { EventEmitter } from 'node:events';

/** The store's clock in epoch milliseconds: monotonic, so a step of the wall clock does not move deadlines. */
export function clientNow(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * Server time minus `clientNow()`, in milliseconds, at most what it really is, so that a deadline translated
 * with it falls no later on the server than on the store's clock.
 */
export class ServerClock {
  private known: number | null = null;
  /** Counts `forget` calls: a measurement begun before one is not kept. */
  private generation = 0;

  /** The kept offset, or null when the next write must measure it. */
  get offsetMs(): number | null {
    return this.known;
  }

  /**
   * Measures with `time`, one round trip whose reply is Redis's `TIME` ([seconds, microseconds]). The server
   * read its clock at some moment between sending and receiving: the offset against the moment the reply came
   * is the midpoint's offset less half the round trip, the lowest it can be.
   */
  async measure(time: () => Promise<unknown>, maxRoundTripMs: number): Promise<number> {
    const generation = this.generation;
    const sent = clientNow();
    const reply = await time();
    const received = clientNow();
    const [seconds, micros] = Array.isArray(reply) ? reply.map(Number) : [];
    if (!Number.isFinite(seconds) || !Number.isFinite(micros)) throw new Error('RedisTokenStore: the server did not tell its time');
    const offset = (seconds as number) * 1000 + (micros as number) / 1000 - received;
    // A measurement over a slow round trip would cut every later deadline short: it serves once, not kept.
    if (received - sent <= maxRoundTripMs && generation === this.generation) this.known = offset;
    return offset;
  }

  /** Measure again on the next write: the connection was made again, or the server's clock moved. */
  forget(): void {
    this.known = null;
    this.generation++;
  }
}

/**
 * Client events after which the server's clock is learnt again: a Redis client connected (again), a Cluster
 * client connected, added or removed a node, or refreshed its slot map (the store's slot may have moved).
 */
const CLOCK_EVENTS = ['ready', '+node', '-node', 'refresh'];

const clocks = new WeakMap<EventEmitter, ServerClock>();

/** The one ServerClock of `client`, shared by every store on it; it forgets its offset on `CLOCK_EVENTS`. */
export function clockOf(client: EventEmitter): ServerClock {
  let clock = clocks.get(client);
  if (clock === undefined) {
    const created = new ServerClock();
    for (const event of CLOCK_EVENTS) client.on(event, () => created.forget());
    clocks.set(client, created);
    clock = created;
  }
  return clock;
}

/**
 * The deadline a write carries to the server, in microseconds of the server's clock: the store's deadline
 * `deadlineMs` (on `clientNow()`'s clock) less a margin of 50 ms, or a tenth of what is left when less, so
 * that a write that runs just in time has its reply on the way before the store gives up on it.
 */
export function serverDeadlineMicros(deadlineMs: number, now: number, offsetMs: number): string {
  const remaining = deadlineMs - now;
  const bound = remaining - Math.min(50, remaining / 10);
  return String(Math.floor((now + bound + offsetMs) * 1000));
}
