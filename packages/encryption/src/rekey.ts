/**
 * `rekey(store, options)`: re-seals every token's secrets under the active key. It works on the wrapped
 * (inner) store, so it sees the sealed values themselves. Each token is re-read and rewritten under the
 * store's lock `refreshLockKey(id)`, the lock TokenManager takes to refresh or revoke that token, and only the
 * fields still under another key (or in plaintext) are written: a refresh in any process never interleaves with it.
 * Stopping half-way is fine: a token already under the active key is left alone, so running it again
 * finishes the job, and a run with nothing left to do writes nothing.
 */
import { type LockOptions, OAuthToken, refreshLockKey, supportsLocking, TOKEN_FIELDS, type TokenStore, TokenStoreError } from '@crm/core';
import { EncryptedTokenStore, keyringOf } from './encrypted-store.js';
import { type EncryptionOptions, Keyring, SEALED_FIELDS, type SealedField, sealedKeyId } from './seal.js';

/** Sealed values per key id; `plaintext` counts values not sealed at all. */
export type KeyCounts = Record<string, number>;

export type RekeyOutcome = 'resealed' | 'current' | 'gone' | 'failed';

export interface RekeyProgress {
  /** Tokens handled so far, this one included. */
  done: number;
  total: number;
  tokenId: string;
  outcome: RekeyOutcome;
}

export interface RekeyOptions extends Partial<EncryptionOptions> {
  /** Called after each token; a returned promise is awaited before the next one (to pace a run). */
  onProgress?: (progress: RekeyProgress) => void | Promise<void>;
  /** The per-token lock's lease and wait (the store's defaults otherwise). */
  lock?: LockOptions;
  /** Stops after the current token; a later run carries on. */
  signal?: AbortSignal;
}

export interface RekeyReport {
  activeKeyId: string;
  /** Sealed values per key id (and `plaintext`) before the run and after it. */
  before: KeyCounts;
  after: KeyCounts;
  /** Tokens read at the start. */
  total: number;
  /** Tokens rewritten under the active key. */
  resealed: number;
  /** Tokens already wholly under the active key: left alone. */
  current: number;
  /** Tokens deleted by someone else before (or while) their turn came; none is brought back. */
  gone: number;
  /** Tokens that could not be re-sealed, by id, with why (never a value). */
  failed: Array<{ tokenId: string; reason: string }>;
  /** True when `signal` stopped the run before the last token. */
  stopped: boolean;
}

/** Counts the stored sealed values per key id (an object without a prototype: any id read from storage counts). */
export function countKeys(tokens: OAuthToken[]): KeyCounts {
  const counts = new Map<string, number>();
  for (const token of tokens) {
    for (const field of SEALED_FIELDS) {
      const value = token[field];
      if (value === null) continue;
      const keyId = sealedKeyId(value) ?? 'plaintext';
      counts.set(keyId, (counts.get(keyId) ?? 0) + 1);
    }
  }
  return Object.assign(Object.create(null) as KeyCounts, Object.fromEntries(counts));
}

/**
 * Re-seals every token of `store` under the active key. `store` is either the store the sealed values live
 * in, with `keys` and `activeKeyId` in the options, or an `encryptedStore(...)`, whose keys are used.
 */
export async function rekey(store: TokenStore, options: RekeyOptions = {}): Promise<RekeyReport> {
  let inner: TokenStore;
  let keyring: Keyring;
  if (store instanceof EncryptedTokenStore) {
    inner = store.inner;
    keyring = options.keys === undefined ? keyringOf(store) : new Keyring(options as EncryptionOptions);
  } else {
    inner = store;
    keyring = new Keyring(options as EncryptionOptions);
  }
  const activeKeyId = keyring.activeKeyId;
  const stale = (token: OAuthToken): SealedField[] =>
    SEALED_FIELDS.filter((field) => token[field] !== null && sealedKeyId(token[field] as string) !== activeKeyId);

  const tokens = await inner.getTokens();
  const report: RekeyReport = {
    activeKeyId,
    before: countKeys(tokens),
    after: {},
    total: tokens.length,
    resealed: 0,
    current: 0,
    gone: 0,
    failed: [],
    stopped: false,
  };

  /** Re-reads the token and rewrites its stale fields; run under the token's lock where the store has one. */
  const reseal = async (id: string, confirm: () => Promise<void>): Promise<RekeyOutcome> => {
    const stored = await inner.findTokenById(id);
    if (stored === null) return 'gone';
    const fields = stale(stored);
    if (fields.length === 0) return 'current';
    // The update names only the stale fields (absent fields keep their stored values), plus one lookup token
    // re-sealed unchanged when none is stale: a save needs an access, refresh or grant token.
    const update = new OAuthToken({ id });
    const carried = fields.some((field) => field !== 'clientSecret')
      ? []
      : (['accessToken', 'refreshToken', 'grantToken'] as const).filter((field) => stored[field] !== null).slice(0, 1);
    for (const field of [...fields, ...carried]) {
      const value = keyring.open(field, stored[field] as string, { tokenId: id, operation: 'saveToken' });
      update[field] = keyring.seal(field, value);
    }
    await confirm();
    await inner.saveToken(update);
    // A delete that does not take the lock can land between the re-read and the save; the save then finds no
    // token by id and inserts one holding only the fields written here, or updates another token that the find
    // rules match. A save never clears a field, so a field the re-read held that the stored result lacks means
    // the token was deleted: the inserted one is deleted again, and the token counts as gone.
    if (update.id !== id) return 'gone';
    if (TOKEN_FIELDS.some((field) => stored[field] !== null && update[field] === null)) {
      await inner.deleteToken(id);
      return 'gone';
    }
    return 'resealed';
  };

  let done = 0;
  for (const token of tokens) {
    if (options.signal?.aborted) {
      report.stopped = true;
      break;
    }
    const id = token.id as string;
    let outcome: RekeyOutcome;
    if (stale(token).length === 0) {
      outcome = 'current';
    } else {
      try {
        outcome = supportsLocking(inner)
          ? await inner.withLock(refreshLockKey(id), (lock) => reseal(id, () => lock.confirm()), options.lock)
          : await reseal(id, async () => {});
      } catch (error) {
        // A store that cannot be reached ends the run (nothing is half-written: each token is one save).
        if (!TokenStoreError.is(error) || error.code === 'BACKEND_UNAVAILABLE' || error.code === 'STORE_CLOSED') throw error;
        report.failed.push({ tokenId: id, reason: `${error.code}: ${error.message}` });
        outcome = 'failed';
      }
    }
    if (outcome === 'resealed') report.resealed++;
    else if (outcome === 'current') report.current++;
    else if (outcome === 'gone') report.gone++;
    await options.onProgress?.({ done: ++done, total: tokens.length, tokenId: id, outcome });
  }
  report.after = countKeys(await inner.getTokens());
  return report;
}
