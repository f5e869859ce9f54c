import {
  type HeldLock,
  type LockOptions,
  type OAuthToken,
  type TokenLocking,
  type TokenStore,
  TokenStoreError,
  type TokenStoreOperation,
} from '@crm/core';
import * as kit from '@crm/core/store-kit';
import { type Cluster, Redis, type RedisOptions } from 'ioredis';
import { clockOf, serverDeadlineMicros, timeReplyMs } from './clock.js';
import {
  DEFAULT_PREFIX,
  EXPIRED,
  type LuaScript,
  PREFIX_PATTERN,
  PREFIX_RULE,
  rowFromPairs,
  rowFromValues,
  SCRIPTS,
  type StoreKeys,
  storeKeys,
} from './scripts.js';
import { TimeoutQueue } from './timeouts.js';

export const STORE_NAME = 'RedisTokenStore';

export type RedisClient = Redis | Cluster;

interface CommonOptions {
  /** Start of every key; the store's keys are `{prefix}:...`. Default `crm-tokens`. */
  prefix?: string;
  /** Longest wait for one round trip (and for a connection) before BACKEND_UNAVAILABLE. Default 5000. */
  operationTimeoutMs?: number;
  /** How often a save runs in all when its freshly drawn id turns out to be taken. Default 5. */
  maxSaveAttempts?: number;
}

export type RedisTokenStoreOptions =
  /** Your own `Redis` or `Cluster`: the store uses it and never closes it. */
  | (CommonOptions & { client: RedisClient })
  /** A `redis://` or `rediss://` URL: the store opens one connection and closes it in `close()`. */
  | (CommonOptions & { url: string; redisOptions?: RedisOptions });

const OPTION_NAMES = ['client', 'url', 'redisOptions', 'prefix', 'operationTimeoutMs', 'maxSaveAttempts'];

/**
 * ioredis options that make a dead server fail commands instead of queueing them: nothing is queued while
 * disconnected (so no command runs long after its caller gave up), in-flight commands fail at the first
 * disconnect, and reconnection goes on forever in the background so the same client recovers.
 * Pass them to your own `Redis`/`Cluster` (`redisOptions` for a Cluster) for the same behaviour.
 */
export function resilientRedisOptions(operationTimeoutMs = kit.DEFAULT_OPERATION_TIMEOUT_MS): RedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: operationTimeoutMs,
    connectTimeout: operationTimeoutMs,
    retryStrategy: (attempt: number) => Math.min(50 * attempt, 1000),
  };
}

/** Messages of ioredis and Redis that mean "not reachable right now", as opposed to a refused command. */
const UNAVAILABLE_MESSAGE =
  /^(LOADING|CLUSTERDOWN|TRYAGAIN|MASTERDOWN|READONLY|BUSY)\b|Command timed out|Connection is closed|Stream isn't writeable|enableOfflineQueue|None of startup nodes|Failed to refresh slots cache|Cluster isn't ready|connect ETIMEDOUT/;
const UNAVAILABLE_NAMES = new Set(['MaxRetriesPerRequestError', 'ClusterAllFailedError']);

function isUnavailable(error: unknown): boolean {
  const name = error instanceof Error ? error.name : '';
  return (
    UNAVAILABLE_NAMES.has(name) ||
    kit.NETWORK_ERROR_CODES.has(kit.driverErrorCode(error)) ||
    UNAVAILABLE_MESSAGE.test(kit.driverErrorMessage(error))
  );
}

/**
 * A TokenStoreError for whatever a round trip threw. Driver messages stay in `cause` only (copied without the
 * command's arguments): a script error could quote its values.
 */
function storeError(operation: TokenStoreOperation, secrets: Iterable<string | null>, error: unknown): TokenStoreError {
  if (TokenStoreError.is(error)) return error;
  const details = { store: STORE_NAME, operation, cause: error, secrets };
  if (isUnavailable(error)) return TokenStoreError.unavailable(details, 'Redis is not reachable');
  return TokenStoreError.failure(details, 'Redis refused the command');
}

/** One round trip, given its deadline in epoch milliseconds on `kit.clientNow()`'s clock. */
type RoundTrip<T> = (deadlineMs: number) => Promise<T>;

/** The save script's reply when the id drawn for a new token is taken: the save runs again with another. */
class IdTaken extends Error {}

/**
 * ioredis prefixes KEYS and plain commands with `keyPrefix`, but not the key names the scripts build from their
 * arguments: the store's keys would split over two namespaces. The store's own `prefix` does that job.
 */
const KEY_PREFIX_REFUSED = "ioredis's keyPrefix is not supported (the scripts build key names themselves); use the store's prefix option";

function keyPrefixOf(client: object): string {
  const options = (client as { options?: { keyPrefix?: unknown; redisOptions?: { keyPrefix?: unknown } } }).options;
  const prefix = options?.keyPrefix ?? options?.redisOptions?.keyPrefix;
  return typeof prefix === 'string' ? prefix : '';
}

/** A lock this store object holds: its key and the owner token its renewal and release compare. */
interface HeldRedisLock {
  lockKey: string;
  owner: string;
}

/**
 * Zoho CRM OAuth tokens in Redis or Redis Cluster: a hash per token, index keys from user name and each token
 * kind to the id, and Lua scripts that make every lookup one round trip and every save one atomic step.
 * `withLock` is a lease on one key (`SET NX PX` with an owner token, renewed and released by owner-checking scripts).
 */
export class RedisTokenStore implements TokenStore, TokenLocking {
  readonly prefix: string;
  readonly operationTimeoutMs: number;
  readonly maxSaveAttempts: number;
  private readonly client: RedisClient;
  private readonly ownsClient: boolean;
  private readonly keys: StoreKeys;
  private closed = false;
  /** A fresh id drawn for an earlier save that did not need it (see takeFreshId). */
  private spareId: string | null = null;
  /** Bounds every round trip sent while connected (see run). */
  private readonly timeouts: TimeoutQueue;
  /** The one wait for the client to become ready that concurrent calls share; close() ends it early. */
  private waiting: { ready: Promise<void>; wake(): void } | null = null;
  /** Locks taken and not yet released, so that close() can free them rather than leave them to their leases. */
  private readonly heldLocks = new Set<HeldRedisLock>();
  /** The server's clock, which the write scripts' deadlines are given in (clock.ts); one per client. */
  private readonly clock: kit.ServerClock;

  constructor(options: RedisTokenStoreOptions) {
    kit.checkOptionsObject(options, STORE_NAME);
    const invalid = (message: string) => TokenStoreError.invalidArgument({ store: STORE_NAME, operation: 'open' }, message);
    kit.checkOptionNames(options as unknown as Record<string, unknown>, OPTION_NAMES, STORE_NAME);
    this.prefix = kit.nameOption(options.prefix, 'prefix', DEFAULT_PREFIX, PREFIX_PATTERN, PREFIX_RULE, STORE_NAME);
    this.operationTimeoutMs = kit.operationTimeoutOption(options.operationTimeoutMs, STORE_NAME);
    this.maxSaveAttempts = kit.maxSaveAttemptsOption(options.maxSaveAttempts, STORE_NAME);
    this.timeouts = new TimeoutQueue(this.operationTimeoutMs);
    this.keys = storeKeys(this.prefix);
    const { client, url, redisOptions } = options as { client?: unknown; url?: unknown; redisOptions?: unknown };
    if ((client === undefined) === (url === undefined)) throw invalid('options need either a client or a url');
    if (client !== undefined) {
      if (redisOptions !== undefined) throw invalid('redisOptions only apply to a url; configure your own client directly');
      if (typeof client !== 'object' || client === null || typeof (client as Redis).evalsha !== 'function') {
        throw invalid('client must be an ioredis Redis or Cluster');
      }
      if (keyPrefixOf(client) !== '') throw invalid(KEY_PREFIX_REFUSED);
      this.client = client as RedisClient;
      this.ownsClient = false;
    } else {
      kit.urlOption(url, 'url', ['redis:', 'rediss:'], STORE_NAME);
      if (redisOptions !== undefined && (typeof redisOptions !== 'object' || redisOptions === null))
        throw invalid('redisOptions must be an object');
      if ((redisOptions as RedisOptions | undefined)?.keyPrefix) throw invalid(KEY_PREFIX_REFUSED);
      this.client = new Redis(url as string, {
        ...resilientRedisOptions(this.operationTimeoutMs),
        lazyConnect: true,
        // Ends the socket at once in close(): ioredis's default (2000 ms) keeps a timer alive after an outage.
        disconnectTimeout: 0,
        ...(redisOptions as RedisOptions | undefined),
      });
      // Errors reach callers through the failing operation; without a listener ioredis would print each reconnect attempt.
      this.client.on('error', () => {});
      this.ownsClient = true;
    }
    this.clock = clockOf(this.client);
  }

  async findToken(token: OAuthToken): Promise<OAuthToken | null> {
    this.checkOpen('findToken');
    kit.checkTokenArgument(token, STORE_NAME, 'findToken');
    const key = kit.lookupKey(token);
    if (key === null) return null;
    const reply = await this.run('findToken', [key.value], () =>
      this.evalScript(SCRIPTS.find, [], [kit.LOOKUP_COLUMNS[key.field], key.value]),
    );
    if (!Array.isArray(reply)) return null;
    return kit.fillAbsentFields(token, kit.tokenFromRow(rowFromPairs(reply), STORE_NAME, 'findToken'));
  }

  async saveToken(token: OAuthToken): Promise<void> {
    this.checkOpen('saveToken');
    kit.checkSaveArgument(token, STORE_NAME);
    const key = kit.lookupKey(token);
    const secrets = kit.tokenSecrets(token);
    // '' is absent, to the script as to core; args[2] is the fresh id, filled in per attempt.
    const args = [key === null ? '' : kit.LOOKUP_COLUMNS[key.field], key?.value ?? '', ''];
    for (const value of kit.tokenToValues(token)) args.push(value ?? '');
    // The fresh id is used only for an insert without id; the script reports the (practically impossible)
    // case that it is taken, and the save runs again with another.
    const reply = await kit
      .retrySave({ maxAttempts: this.maxSaveAttempts, shouldRetry: (error) => error instanceof IdTaken }, async () => {
        const fresh = token.id === null ? this.takeFreshId() : '';
        args[2] = fresh;
        const result = (await this.write('saveToken', secrets, SCRIPTS.save, [], args)) as string[];
        if (result[0] === 'id-taken') throw new IdTaken();
        // An id the script did not use is still unused: the next save without id may send it again.
        if (fresh !== '' && (result[0] === 'conflict' || result[1] !== fresh)) this.spareId ??= fresh;
        return result;
      })
      .catch((error: unknown) => {
        if (error instanceof IdTaken)
          throw TokenStoreError.failure({ store: STORE_NAME, operation: 'saveToken' }, 'could not draw an unused token id');
        throw error;
      });
    if (reply[0] === 'conflict') {
      throw TokenStoreError.conflict({ store: STORE_NAME, operation: 'saveToken' }, 'another stored token already has this user name');
    }
    kit.copyStoredFields(token, kit.tokenFromRow(rowFromValues(reply), STORE_NAME, 'saveToken'));
  }

  async deleteToken(id: string): Promise<void> {
    this.checkOpen('deleteToken');
    kit.checkIdArgument(id, STORE_NAME, 'deleteToken');
    await this.write('deleteToken', [], SCRIPTS.delete, [], [id]);
  }

  async findTokenById(id: string): Promise<OAuthToken | null> {
    this.checkOpen('findTokenById');
    kit.checkIdArgument(id, STORE_NAME, 'findTokenById');
    const hash = await this.run('findTokenById', [], () => this.client.hgetall(this.keys.token(id)));
    return Object.keys(hash).length === 0 ? null : kit.tokenFromRow(hash, STORE_NAME, 'findTokenById');
  }

  /** One ZRANGE for the ids, then HGETALLs pipelined in batches; the timeout bounds each round trip. */
  async getTokens(): Promise<OAuthToken[]> {
    this.checkOpen('getTokens');
    const ids = await this.run('getTokens', [], () => this.client.zrange(this.keys.ids, 0, -1));
    const tokens: OAuthToken[] = [];
    for (let start = 0; start < ids.length; start += 1000) {
      const batch = ids.slice(start, start + 1000);
      const replies = await this.run('getTokens', [], async () => {
        const pipeline = this.client.pipeline();
        for (const id of batch) pipeline.hgetall(this.keys.token(id));
        const results = (await pipeline.exec()) ?? [];
        for (const [error] of results) if (error) throw error;
        return results.map(([, hash]) => hash as Record<string, string>);
      });
      // A token deleted between the two round trips is simply not listed.
      for (const hash of replies) if (Object.keys(hash).length > 0) tokens.push(kit.tokenFromRow(hash, STORE_NAME, 'getTokens'));
    }
    return tokens;
  }

  /**
   * SCANs only this store's `{prefix}:*` keys (on every master of a Cluster) and hands each batch to a
   * script that removes whole tokens, so the store stays consistent even while other clients save.
   */
  async deleteTokens(): Promise<void> {
    this.checkOpen('deleteTokens');
    for (const node of await this.nodes('deleteTokens')) {
      let cursor = '0';
      do {
        const [next, keys] = await this.run('deleteTokens', [], () => node.scan(cursor, 'MATCH', this.keys.scanPattern, 'COUNT', 500));
        cursor = next;
        if (keys.length > 0) await this.write('deleteTokens', [], SCRIPTS.purge, keys, []);
      } while (cursor !== '0');
    }
    await this.write('deleteTokens', [], SCRIPTS.purge, [this.keys.seq], []);
  }

  /**
   * Redis has no schema: keys appear with the first save. This loads the scripts into the server's cache
   * (every master of a Cluster), which also proves the server is reachable and runs Lua.
   */
  async migrate(): Promise<void> {
    this.checkOpen('migrate');
    for (const node of await this.nodes('migrate')) {
      for (const script of Object.values(SCRIPTS)) await this.run('migrate', [], () => node.script('LOAD', script.lua));
    }
  }

  /**
   * Runs `work` while holding the lock on `key`, shared by every client of this server (or cluster) that uses
   * the same prefix. The lock is `{prefix}:lock:<sha256 of key>`, holding a random owner token and expiring
   * with its lease; each command is bounded by operationTimeoutMs.
   */
  async withLock<T>(key: string, work: (lock: HeldLock) => Promise<T>, options?: LockOptions): Promise<T> {
    this.checkOpen('withLock');
    return kit.runWithLease(STORE_NAME, key, work, options, (lockKey, leaseMs) => this.tryLock(lockKey, leaseMs));
  }

  /** One `SET NX PX`: the lease, or null while another owner holds the lock. */
  private async tryLock(key: string, leaseMs: number): Promise<kit.Lease | null> {
    const held: HeldRedisLock = { lockKey: this.keys.lock(key), owner: kit.newLockOwner() };
    let reply: string | null;
    try {
      reply = await this.run('withLock', [held.owner], () => this.client.set(held.lockKey, held.owner, 'PX', leaseMs, 'NX'));
    } catch (error) {
      // A SET that was sent may have landed although its reply never came: free it now, not when its lease ends.
      if (!(TokenStoreError.is(error) && error.code === 'STORE_CLOSED')) this.releaseLock(held).catch(() => {});
      throw error;
    }
    if (reply !== 'OK') return null;
    if (this.closed) {
      // close() ran while the SET was on its way, after it freed the locks it knew of.
      await this.bounded(this.releaseLock(held).catch(() => {}));
      throw TokenStoreError.closed({ store: STORE_NAME, operation: 'withLock' });
    }
    this.heldLocks.add(held);
    return {
      renew: async (renewMs) => {
        const renewed = await this.run('withLock', [held.owner], () =>
          this.evalLua(SCRIPTS.renewLock, [held.lockKey], [held.owner, String(renewMs)]),
        );
        return renewed === 1;
      },
      release: async () => {
        this.heldLocks.delete(held);
        await this.run('withLock', [held.owner], () => this.releaseLock(held));
      },
    };
  }

  /** Compare-and-delete: never frees a lock another owner took after this one's lease ran out. */
  private releaseLock(held: HeldRedisLock): Promise<unknown> {
    return this.evalLua(SCRIPTS.releaseLock, [held.lockKey], [held.owner]);
  }

  /**
   * An id for a save that may insert a token without one. Drawing one costs more than the rest of the
   * client's work on a save, and most saves update a stored token and leave it unused; so an unused id is
   * kept and sent again; another is drawn only after a save used it, or failed (and so may have used it).
   */
  private takeFreshId(): string {
    const id = this.spareId ?? kit.newTokenId();
    this.spareId = null;
    return id;
  }

  /** A closed store refuses every call with STORE_CLOSED, before looking at its arguments. */
  private checkOpen(operation: TokenStoreOperation): void {
    if (this.closed) throw TokenStoreError.closed({ store: STORE_NAME, operation });
  }

  /**
   * Closes the connection the store opened from a URL; a client passed in stays open (it is yours). Resolves
   * once the socket is gone, whatever state the connection is in, and never rejects.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Calls still waiting for a connection settle now with STORE_CLOSED, rather than at their deadline.
    this.waiting?.wake();
    // Locks still held are freed for other processes now; their work's next renewal or confirm() is LOCK_LOST.
    const held = [...this.heldLocks];
    this.heldLocks.clear();
    if (held.length > 0 && this.client.status === 'ready') {
      await this.bounded(Promise.allSettled(held.map((lock) => this.releaseLock(lock))));
    }
    if (!this.ownsClient) return;
    const client = this.client as Redis;
    // QUIT lets replies still on their way arrive.
    if (client.status === 'ready') await this.bounded(client.quit().catch(() => {}));
    client.disconnect();
    // disconnect() destroys the socket from a 0 ms timer (disconnectTimeout): resolve once that has run.
    await new Promise((resolve) => setTimeout(resolve, 0));
  }

  /** Waits for `pending`, or operationTimeoutMs for a server that stopped answering, whichever comes first. */
  private async bounded(pending: Promise<unknown>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise((resolve) => {
      timer = setTimeout(resolve, this.operationTimeoutMs);
    });
    await Promise.race([pending, bound]);
    clearTimeout(timer);
  }

  /** The servers a whole-keyspace command must visit: every master of a Cluster, or the one server. */
  private async nodes(operation: TokenStoreOperation): Promise<Redis[]> {
    return this.run(operation, [], async () => (this.client.isCluster ? (this.client as Cluster).nodes('master') : [this.client as Redis]));
  }

  /** A token script: KEYS[1] is the id set (it routes the script), ARGV[1] the key base. */
  private evalScript(script: LuaScript, extraKeys: string[], args: string[]): Promise<unknown> {
    return this.evalLua(script, [this.keys.ids, ...extraKeys], [this.keys.base, ...args]);
  }

  /**
   * A token script that writes, in one round trip within the deadline (run). The script gets the deadline in
   * the server's time as ARGV[2] and writes nothing once it has passed there, so a write the caller was told
   * had failed never lands later, however late its bytes reach the server. The server's clock is learnt on the
   * first write (one more round trip, within the same deadline) and kept.
   */
  private write(
    operation: TokenStoreOperation,
    secrets: Iterable<string | null>,
    script: LuaScript,
    extraKeys: string[],
    args: string[],
  ): Promise<unknown> {
    return this.run(operation, secrets, (deadlineMs) => {
      const send = (offsetMs: number): Promise<unknown> => {
        const now = kit.clientNow();
        if (now >= deadlineMs)
          throw TokenStoreError.unavailable({ store: STORE_NAME, operation }, 'the deadline passed before the write was sent');
        const keys = [this.keys.ids, ...extraKeys];
        return this.evalLua(script, keys, [this.keys.base, serverDeadlineMicros(deadlineMs, now, offsetMs), ...args]).then((reply) => {
          if (Array.isArray(reply) && reply[0] === EXPIRED) {
            // Its deadline passed on the server before it did here (the store learnt the server's clock over a
            // slow round trip, or either clock moved since): learn the clock again for the next write.
            if (kit.clientNow() < deadlineMs) this.clock.forget();
            throw TokenStoreError.unavailable({ store: STORE_NAME, operation }, `Redis received the ${operation} after its deadline`);
          }
          return reply;
        });
      };
      const offsetMs = this.clock.offsetMs;
      if (offsetMs !== null) return send(offsetMs);
      return this.clock
        .measure(async () => timeReplyMs(await this.client.eval(SCRIPTS.time.lua, 1, this.keys.ids)), this.operationTimeoutMs / 10)
        .then(send);
    });
  }

  /** EVALSHA, falling back to EVAL when the server does not know the script yet (first use, or after a restart). */
  private evalLua(script: LuaScript, keys: string[], args: string[]): Promise<unknown> {
    return this.client.evalsha(script.sha, keys.length, ...keys, ...args).catch((error: unknown) => {
      if (!kit.driverErrorMessage(error).startsWith('NOSCRIPT')) throw error;
      return this.client.eval(script.lua, keys.length, ...keys, ...args);
    });
  }

  /**
   * Runs one round trip within operationTimeoutMs (waiting for the connection counts) and maps every error.
   * `secrets` are the values the round trip carries: ioredis attaches the command's arguments to its errors,
   * and they are removed from the error's cause.
   */
  private run<T>(operation: TokenStoreOperation, secrets: Iterable<string | null>, roundTrip: RoundTrip<T>): Promise<T> {
    if (this.closed) return Promise.reject(TokenStoreError.closed({ store: STORE_NAME, operation }));
    // Connected, as nearly always: the command leaves now, and one timer bounds the wait for its reply.
    if (this.client.status === 'ready') return this.withinTimeout(operation, secrets, roundTrip);
    return this.runWhenConnected(operation, secrets, roundTrip);
  }

  /** The round trip, its reply awaited for at most operationTimeoutMs. */
  private withinTimeout<T>(operation: TokenStoreOperation, secrets: Iterable<string | null>, roundTrip: RoundTrip<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const waiter = this.timeouts.add(() =>
        reject(TokenStoreError.unavailable({ store: STORE_NAME, operation }, `Redis did not answer within ${this.operationTimeoutMs} ms`)),
      );
      const fail = (error: unknown) => {
        this.timeouts.settle(waiter);
        reject(storeError(operation, secrets, error));
      };
      try {
        roundTrip(performance.timeOrigin + waiter.due).then((reply) => {
          this.timeouts.settle(waiter);
          resolve(reply);
        }, fail);
      } catch (error) {
        fail(error);
      }
    });
  }

  /** run() while the client is not ready: waits for it (that wait counts against operationTimeoutMs), then sends. */
  private async runWhenConnected<T>(operation: TokenStoreOperation, secrets: Iterable<string | null>, roundTrip: RoundTrip<T>): Promise<T> {
    const deadlineMs = kit.clientNow() + this.operationTimeoutMs;
    const deadline = { timeoutMs: this.operationTimeoutMs, store: STORE_NAME, operation, backend: 'Redis' };
    try {
      return await kit.withDeadline(deadline, async (signal) => {
        await this.whenConnected(operation);
        // A caller that was already told BACKEND_UNAVAILABLE must not see its save applied once Redis is back.
        if (signal.aborted) throw TokenStoreError.unavailable({ store: STORE_NAME, operation }, 'gave up before Redis was reachable');
        if (this.closed) throw TokenStoreError.closed({ store: STORE_NAME, operation });
        return roundTrip(deadlineMs);
      });
    } catch (error) {
      throw storeError(operation, secrets, error);
    }
  }

  /**
   * Waits for the client to be ready: with the offline queue off, a command sent earlier would fail at once.
   * Concurrent operations share one wait (one listener); run() bounds how long each of them waits. The wait
   * also ends when the client ends or the store closes, so those calls settle at once, not at the deadline.
   */
  private whenConnected(operation: TokenStoreOperation): Promise<void> {
    const client = this.client;
    if (client.status === 'ready') return Promise.resolve();
    if (client.status === 'end') {
      return Promise.reject(TokenStoreError.unavailable({ store: STORE_NAME, operation }, 'the Redis client has been closed'));
    }
    if (client.status === 'wait') client.connect().catch(() => {});
    if (this.waiting === null) {
      let resolve = () => {};
      const ready = new Promise<void>((settle) => {
        resolve = settle;
      });
      const wake = () => {
        client.off('ready', wake).off('end', wake);
        this.waiting = null;
        resolve();
      };
      client.once('ready', wake).once('end', wake);
      this.waiting = { ready, wake };
    }
    return this.waiting.ready;
  }
}
