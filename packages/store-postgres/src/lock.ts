/**
 * `withLock` on PostgreSQL: a transaction-level advisory lock, held on a connection of its own for the whole
 * hold. The server frees it when that session ends: at once when the holder's process dies (its socket
 * closes), after `leaseMs` when the holder stops talking (`idle_in_transaction_session_timeout`).
 */
import * as kit from '@crm/core/store-kit';
import type pg from 'pg';
import { beginLock, STILL_HELD, STORE_NAME, TRY_LOCK } from './sql.js';

/** One hold: the lock's connection, in the transaction that holds the lock. */
export class AdvisoryLease implements kit.Lease {
  private ended = false;
  /** The connection reported an error between queries (the server ended the session): the lock is gone. */
  private broken = false;
  private readonly onError = () => {
    this.broken = true;
  };

  private constructor(
    private readonly client: pg.PoolClient,
    private readonly ids: [number, number],
    private readonly timeoutMs: number,
    private readonly held: Set<AdvisoryLease>,
  ) {
    // A pg client emits 'error' when its session dies while idle; unheard, that would crash the process.
    client.on('error', this.onError);
    held.add(this);
  }

  /**
   * Tries once to take the lock on a connection from `pool`: the lease, or null (the lock is taken; the
   * connection went back to the pool as it came). Within `timeoutMs`; past it the connection is destroyed.
   */
  static tryTake(
    pool: pg.Pool,
    ids: [number, number],
    leaseMs: number,
    timeoutMs: number,
    held: Set<AdvisoryLease>,
  ): Promise<AdvisoryLease | null> {
    const deadline = { timeoutMs, store: STORE_NAME, operation: 'withLock', backend: 'PostgreSQL' } as const;
    return kit.withDeadline(deadline, async (signal) => {
      const lease = new AdvisoryLease(await pool.connect(), ids, timeoutMs, held);
      if (signal.aborted) {
        lease.end(false); // nothing ran on it
        throw signal.reason;
      }
      signal.addEventListener('abort', () => lease.destroy(), { once: true });
      try {
        await lease.client.query(beginLock(leaseMs, timeoutMs));
        const { rows } = await lease.client.query<{ locked: boolean }>({ ...TRY_LOCK, values: ids });
        if (rows[0]?.locked === true) return lease;
        await lease.client.query('ROLLBACK'); // also undoes the SET LOCALs
        lease.end(false);
        return null;
      } catch (error) {
        lease.destroy();
        throw error;
      }
    });
  }

  /** Asks the server whether this session still holds the lock; that statement also restarts the idle clock. */
  async renew(): Promise<boolean> {
    if (this.ended || this.broken) return false;
    try {
      const { rows } = await this.bounded(() => this.client.query<{ held: boolean }>({ ...STILL_HELD, values: this.ids }));
      return rows[0]?.held === true;
    } catch {
      this.destroy();
      return false;
    }
  }

  /** COMMIT ends the transaction and its lock; the connection, clean again, goes back to its pool. */
  async release(): Promise<void> {
    if (this.ended) return;
    if (this.broken) return this.destroy();
    try {
      await this.bounded(() => this.client.query('COMMIT'));
      this.end(false);
    } catch {
      this.destroy();
    }
  }

  /** Closes the connection: the server ends the session, and the lock with it. */
  destroy(): void {
    this.end(true);
  }

  private end(destroy: boolean): void {
    if (this.ended) return;
    this.ended = true;
    this.held.delete(this);
    // A destroyed client keeps the listener: its closing socket may still report an error.
    if (!destroy) this.client.removeListener('error', this.onError);
    this.client.release(destroy ? new Error('PostgresTokenStore: lock connection closed') : undefined);
  }

  /** One statement within `timeoutMs`: a server that does not answer costs the connection, and so the lock. */
  private bounded<T>(query: () => Promise<T>): Promise<T> {
    const deadline = { timeoutMs: this.timeoutMs, store: STORE_NAME, operation: 'withLock', backend: 'PostgreSQL' } as const;
    return kit.withDeadline(deadline, (signal) => {
      signal.addEventListener('abort', () => this.destroy(), { once: true });
      return query();
    });
  }
}
