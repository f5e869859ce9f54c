/**
 * `withLock` on MySQL and MariaDB: a named lock (`GET_LOCK`), held on a connection of its own for the whole
 * hold. The server frees it when that session ends: at once when the holder's process dies (its socket
 * closes), after the lease when the holder stops talking (`wait_timeout`, set when the lock is taken).
 */
import type { Socket } from 'node:net';
import * as kit from '@crm/core/store-kit';
import type { PoolConnection as CoreConnection } from 'mysql2';
import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { LOCK_STATEMENTS, STORE_NAME } from './sql.js';

/**
 * Ends a connection for good. mysql2's destroy() only half-closes the socket: to a frozen server it stays
 * open, keeping the process alive and the server's session (and its locks) waiting. Cutting the socket
 * makes the server roll back what the session held as soon as it runs again.
 */
export function destroyConnection(connection: CoreConnection): void {
  connection.destroy();
  (connection as unknown as { stream?: Socket }).stream?.destroy();
}

/** One hold: the lock's connection, whose session holds the named lock. */
export class NamedLease implements kit.Lease {
  private ended = false;
  /** The connection reported an error between queries (the server ended the session): the lock is gone. */
  private broken = false;
  private name = '';
  private readonly onError = () => {
    this.broken = true;
  };

  private constructor(
    private readonly connection: PoolConnection,
    private readonly timeoutMs: number,
    private readonly held: Set<NamedLease>,
  ) {
    // A pool connection reports a session that died between queries as 'error' (mysql2 listens only once).
    connection.connection.on('error', this.onError);
    held.add(this);
  }

  /**
   * Tries once to take the lock on a connection from `pool`: the lease, or null (the lock is taken; the
   * connection went back to the pool as it came). Within `timeoutMs`; past it the connection is destroyed.
   * `database` and `digest` name the lock (see `LOCK_STATEMENTS`).
   */
  static tryTake(
    pool: Pool,
    lockName: [database: string | null, digest: string],
    leaseMs: number,
    timeoutMs: number,
    held: Set<NamedLease>,
  ): Promise<NamedLease | null> {
    const deadline = { timeoutMs, store: STORE_NAME, operation: 'withLock', backend: 'MySQL' } as const;
    return kit.withDeadline(deadline, async (signal) => {
      const lease = new NamedLease(await pool.getConnection(), timeoutMs, held);
      if (signal.aborted) {
        lease.end(false); // nothing ran on it
        throw signal.reason;
      }
      signal.addEventListener('abort', () => lease.destroy(), { once: true });
      try {
        await lease.connection.execute(LOCK_STATEMENTS.tryLock, [...lockName, Math.ceil(leaseMs / 1000)]);
        const [rows] = await lease.connection.execute<RowDataPacket[]>(LOCK_STATEMENTS.tookLock, lockName);
        if (Number(rows[0]?.held) === 1) {
          lease.name = String(rows[0]?.name);
          return lease;
        }
        lease.end(false); // not taken, so wait_timeout is as it was
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
      const [rows] = await this.bounded(() => this.connection.execute<RowDataPacket[]>(LOCK_STATEMENTS.stillHeld, [this.name]));
      return Number(rows[0]?.held) === 1;
    } catch {
      this.destroy();
      return false;
    }
  }

  /**
   * RELEASE_LOCK (only this session's lock), so the next holder can take it at once, then the connection is
   * destroyed: its wait_timeout was changed, so it never goes back to the pool.
   */
  async release(): Promise<void> {
    if (this.ended) return;
    try {
      if (!this.broken) await this.bounded(() => this.connection.execute(LOCK_STATEMENTS.release, [this.name]));
    } catch {
      // The session ends with its connection below, and the lock with it.
    }
    this.destroy();
  }

  /** Closes the connection: the server ends the session, and the lock with it. */
  destroy(): void {
    this.end(true);
  }

  private end(destroy: boolean): void {
    if (this.ended) return;
    this.ended = true;
    this.held.delete(this);
    if (destroy) {
      destroyConnection(this.connection.connection as unknown as CoreConnection); // keeps the listener: its closing socket may still report an error
    } else {
      this.connection.connection.removeListener('error', this.onError);
      this.connection.release();
    }
  }

  /** One statement within `timeoutMs`: a server that does not answer costs the connection, and so the lock. */
  private bounded<T>(query: () => Promise<T>): Promise<T> {
    const deadline = { timeoutMs: this.timeoutMs, store: STORE_NAME, operation: 'withLock', backend: 'MySQL' } as const;
    return kit.withDeadline(deadline, (signal) => {
      signal.addEventListener('abort', () => this.destroy(), { once: true });
      return query();
    });
  }
}
