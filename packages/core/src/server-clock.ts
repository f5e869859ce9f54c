/**
 * A server's clock as seen from a store, so that a write can carry its deadline in the server's time and the
 * server itself refuses a write that reaches it after the caller was told it failed. Each store reads the
 * server's time its own way (PostgreSQL `clock_timestamp()`, Redis `TIME`, MariaDB `SYSDATE(6)`); the
 * measurement and what is kept of it are the same everywhere, here.
 */

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
  private knownAt = 0;
  /** Counts `forget` calls: a measurement begun before one is not kept. */
  private generation = 0;

  /** The kept offset, or null when the next write must measure it. */
  get offsetMs(): number | null {
    return this.known;
  }

  /** Milliseconds since the kept offset was measured (Infinity when none is kept). */
  ageMs(): number {
    return this.known === null ? Number.POSITIVE_INFINITY : clientNow() - this.knownAt;
  }

  /**
   * Measures with `readServerMs`, one round trip that answers the server's time in epoch milliseconds. The
   * server read its clock at some moment between sending and receiving: the offset against the moment the
   * answer came is the midpoint's offset less half the round trip, the lowest it can be. A measurement over a
   * round trip longer than `maxRoundTripMs` serves this once but is not kept: its margin would cut every later
   * deadline short.
   */
  async measure(readServerMs: () => Promise<number>, maxRoundTripMs: number): Promise<number> {
    const generation = this.generation;
    const sent = clientNow();
    const serverMs = await readServerMs();
    const received = clientNow();
    if (!Number.isFinite(serverMs)) throw new Error('the server did not tell its time');
    const offset = serverMs - received;
    if (received - sent <= maxRoundTripMs && generation === this.generation) {
      this.known = offset;
      this.knownAt = received;
    }
    return offset;
  }

  /** Measure again on the next write: the connection was made again, or the server's clock moved. */
  forget(): void {
    this.known = null;
    this.generation++;
  }
}
