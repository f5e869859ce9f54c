import {
  checkIdArgument,
  checkSaveArgument,
  checkTokenArgument,
  copyStoredFields,
  fillAbsentFields,
  LOOKUP_COLUMNS,
  lookupKey,
  NETWORK_ERROR_CODES,
  newTokenId,
  type OAuthToken,
  type TokenStore,
  TokenStoreError,
  type TokenStoreOperation,
} from '@crm/core';
import { type Cluster, Redis, type RedisOptions } from 'ioredis';
import { checkPrefix, DEFAULT_PREFIX, STORE, type StoreKeys, storeKeys, tokenFromHash, tokenToValues } from './keys.js';
import { type LuaScript, SCRIPTS } from './scripts.js';

export type RedisClient = Redis | Cluster;

interface CommonOptions {
  /** Start of every key; the store's keys are `{prefix}:...`. Default `crm-tokens`. */
  prefix?: string;
  /** Longest wait for one round trip (and for a connection) before BACKEND_UNAVAILABLE. Default 3000. */
  operationTimeoutMs?: number;
}

export type RedisTokenStoreOptions =
  /** Your own `Redis` or `Cluster`: the store uses it and never closes it. */
  | (CommonOptions & { client: RedisClient })
  /** A `redis://` or `rediss://` URL: the store opens one connection and closes it in `close()`. */
  | (CommonOptions & { url: string; redisOptions?: RedisOptions });

export const DEFAULT_OPERATION_TIMEOUT_MS = 3000;

/**
 * ioredis options that make a dead server fail commands instead of queueing them: nothing is queued while
 * disconnected (so no command runs long after its caller gave up), in-flight commands fail at the first
 * disconnect, and reconnection goes on forever in the background so the same client recovers.
 * Pass them to your own `Redis`/`Cluster` (`redisOptions` for a Cluster) for the same behaviour.
 */
export function resilientRedisOptions(operationTimeoutMs = DEFAULT_OPERATION_TIMEOUT_MS): RedisOptions {
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

function isUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === 'MaxRetriesPerRequestError' || error.name === 'ClusterAllFailedError') return true;
  const code = (error as { code?: unknown }).code;
  return (typeof code === 'string' && NETWORK_ERROR_CODES.has(code)) || UNAVAILABLE_MESSAGE.test(error.message);
}

/**
 * Zoho CRM OAuth tokens in Redis or Redis Cluster: a hash per token, index keys from user name and each token
 * kind to the id, and Lua scripts that make every lookup one round trip and every save one atomic step.
 */
export class RedisTokenStore implements TokenStore {
  readonly prefix: string;
  readonly operationTimeoutMs: number;
  private readonly client: RedisClient;
  private readonly ownsClient: boolean;
  private readonly keys: StoreKeys;
  private closed = false;
  private connected: Promise<void> | null = null;

  constructor(options: RedisTokenStoreOptions) {
    if (typeof options !== 'object' || options === null) {
      throw TokenStoreError.invalidArgument({ store: STORE, operation: 'open' }, 'options must be an object with client or url');
    }
    this.prefix = checkPrefix(options.prefix ?? DEFAULT_PREFIX, 'open');
    const timeout = options.operationTimeoutMs ?? DEFAULT_OPERATION_TIMEOUT_MS;
    if (!Number.isInteger(timeout) || timeout <= 0) {
      throw TokenStoreError.invalidArgument({ store: STORE, operation: 'open' }, 'operationTimeoutMs must be a positive whole number');
    }
    this.operationTimeoutMs = timeout;
    this.keys = storeKeys(this.prefix);
    if ('client' in options && options.client !== undefined) {
      this.client = options.client;
      this.ownsClient = false;
    } else if ('url' in options && typeof options.url === 'string') {
      this.client = new Redis(options.url, { ...resilientRedisOptions(timeout), lazyConnect: true, ...options.redisOptions });
      // Errors reach callers through the failing operation; without a listener ioredis would print each reconnect attempt.
      this.client.on('error', () => {});
      this.ownsClient = true;
    } else {
      throw TokenStoreError.invalidArgument({ store: STORE, operation: 'open' }, 'options need a client or a url');
    }
  }

  async findToken(token: OAuthToken): Promise<OAuthToken | null> {
    checkTokenArgument(token, STORE, 'findToken');
    const key = lookupKey(token);
    if (key === null) return null;
    const reply = await this.run('findToken', () => this.evalScript(SCRIPTS.find, [], [LOOKUP_COLUMNS[key.field], key.value]));
    if (!Array.isArray(reply)) return null;
    return fillAbsentFields(token, tokenFromHash(reply as string[], 'findToken'));
  }

  async saveToken(token: OAuthToken): Promise<void> {
    checkSaveArgument(token, STORE);
    const key = lookupKey(token);
    const values = tokenToValues(token);
    // A fresh id is drawn here; the script uses it only for an insert without id and reports the (practically
    // impossible) case that it is taken, so a few retries always suffice.
    for (let attempt = 0; attempt < 5; attempt++) {
      const args = [token.id ?? '', key === null ? '' : LOOKUP_COLUMNS[key.field], key?.value ?? '', newTokenId(), ...values];
      const reply = (await this.run('saveToken', () => this.evalScript(SCRIPTS.save, [], args))) as string[];
      if (reply[0] === 'conflict') {
        throw TokenStoreError.conflict({ store: STORE, operation: 'saveToken' }, 'another stored token already has this user name');
      }
      if (reply[0] === 'saved') {
        copyStoredFields(token, tokenFromHash(reply.slice(1), 'saveToken'));
        return;
      }
    }
    throw TokenStoreError.failure({ store: STORE, operation: 'saveToken' }, 'could not draw an unused token id');
  }

  async deleteToken(id: string): Promise<void> {
    checkIdArgument(id, STORE, 'deleteToken');
    await this.run('deleteToken', () => this.evalScript(SCRIPTS.delete, [], [id]));
  }

  async findTokenById(id: string): Promise<OAuthToken | null> {
    checkIdArgument(id, STORE, 'findTokenById');
    const hash = await this.run('findTokenById', () => this.client.hgetall(this.keys.token(id)));
    return Object.keys(hash).length === 0 ? null : tokenFromHash(hash, 'findTokenById');
  }

  /** One ZRANGE for the ids, then HGETALLs pipelined in batches; the timeout bounds each round trip. */
  async getTokens(): Promise<OAuthToken[]> {
    const ids = await this.run('getTokens', () => this.client.zrange(this.keys.ids, 0, -1));
    const tokens: OAuthToken[] = [];
    for (let start = 0; start < ids.length; start += 1000) {
      const batch = ids.slice(start, start + 1000);
      const replies = await this.run('getTokens', async () => {
        const pipeline = this.client.pipeline();
        for (const id of batch) pipeline.hgetall(this.keys.token(id));
        return (await pipeline.exec()) ?? [];
      });
      for (const [error, hash] of replies) {
        if (error) throw this.mapError(error, 'getTokens');
        // A token deleted between the two round trips is simply not listed.
        if (hash !== null && Object.keys(hash as object).length > 0)
          tokens.push(tokenFromHash(hash as Record<string, string>, 'getTokens'));
      }
    }
    return tokens;
  }

  /**
   * SCANs only this store's `{prefix}:*` keys (on every master of a Cluster) and hands each batch to a
   * script that removes whole tokens, so the store stays consistent even while other clients save.
   */
  async deleteTokens(): Promise<void> {
    const nodes = await this.run('deleteTokens', async () =>
      this.client.isCluster ? (this.client as Cluster).nodes('master') : [this.client],
    );
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, keys] = await this.run('deleteTokens', () => node.scan(cursor, 'MATCH', this.keys.scanPattern, 'COUNT', 500));
        cursor = next;
        if (keys.length > 0) await this.run('deleteTokens', () => this.evalScript(SCRIPTS.purge, keys, []));
      } while (cursor !== '0');
    }
    await this.run('deleteTokens', () => this.evalScript(SCRIPTS.purge, [this.keys.seq], []));
  }

  /**
   * Redis has no schema: keys appear with the first save. This loads the scripts into the server's cache
   * (every master of a Cluster), which also proves the server is reachable and runs Lua.
   */
  async migrate(): Promise<void> {
    const nodes = await this.run('migrate', async () => (this.client.isCluster ? (this.client as Cluster).nodes('master') : [this.client]));
    for (const node of nodes) {
      for (const script of Object.values(SCRIPTS)) await this.run('migrate', () => node.script('LOAD', script.lua));
    }
  }

  /** Closes the connection the store opened from a URL; a client passed in stays open (it is yours). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.ownsClient) return;
    const client = this.client as Redis;
    if (client.status === 'ready') {
      await Promise.race([client.quit().catch(() => {}), new Promise((resolve) => setTimeout(resolve, this.operationTimeoutMs).unref())]);
    }
    client.disconnect();
  }

  /** EVALSHA, falling back to EVAL when the server does not know the script yet (first use, or after a restart). */
  private async evalScript(script: LuaScript, extraKeys: string[], args: string[]): Promise<unknown> {
    const keys = [this.keys.ids, ...extraKeys];
    try {
      return await this.client.evalsha(script.sha, keys.length, ...keys, this.keys.base, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return this.client.eval(script.lua, keys.length, ...keys, this.keys.base, ...args);
    }
  }

  /** Runs one round trip within operationTimeoutMs (waiting for the connection counts) and maps every error. */
  private async run<T>(operation: TokenStoreOperation, roundTrip: () => Promise<T>): Promise<T> {
    if (this.closed) throw TokenStoreError.unavailable({ store: STORE, operation }, 'the store is closed');
    let timer: NodeJS.Timeout | undefined;
    let gaveUp = false;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        gaveUp = true;
        reject(TokenStoreError.unavailable({ store: STORE, operation }, `Redis did not answer within ${this.operationTimeoutMs} ms`));
      }, this.operationTimeoutMs);
    });
    const send = async () => {
      await this.whenConnected(operation);
      // A caller that was already told BACKEND_UNAVAILABLE must not see its save applied once Redis is back.
      if (gaveUp) throw TokenStoreError.unavailable({ store: STORE, operation }, 'gave up before Redis was reachable');
      return roundTrip();
    };
    try {
      return await Promise.race([send(), timedOut]);
    } catch (error) {
      throw this.mapError(error, operation);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Waits for the client to be ready: with the offline queue off, a command sent earlier would fail at once.
   * Concurrent operations share one wait (one listener); run() bounds how long each of them waits.
   */
  private whenConnected(operation: TokenStoreOperation): Promise<void> {
    const client = this.client;
    if (client.status === 'ready') return Promise.resolve();
    if (client.status === 'end') {
      return Promise.reject(TokenStoreError.unavailable({ store: STORE, operation }, 'the Redis client has been closed'));
    }
    if (client.status === 'wait') client.connect().catch(() => {});
    this.connected ??= new Promise((resolve) => {
      client.once('ready', () => {
        this.connected = null;
        resolve();
      });
    });
    return this.connected;
  }

  private mapError(error: unknown, operation: TokenStoreOperation): TokenStoreError {
    if (TokenStoreError.is(error)) return error;
    const details = { store: STORE, operation, cause: error };
    // Driver messages stay in `cause` only: a script error could quote the values it was given.
    if (isUnavailable(error)) return TokenStoreError.unavailable(details, 'Redis is not reachable');
    return TokenStoreError.failure(details, 'Redis refused the command');
  }
}
