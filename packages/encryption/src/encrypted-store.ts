/**
 * `encryptedStore(store, { keys, activeKeyId })`: any TokenStore with its secret fields sealed at rest. The
 * wrapped store only ever sees sealed values; its own find rules still work because lookup fields are sealed
 * deterministically. The rules themselves are core's (`lookupKey`, `fillAbsentFields`, `copyStoredFields`).
 */

import { inspect } from 'node:util';
import {
  type HeldLock,
  type LockOptions,
  type OAuthToken,
  supportsLocking,
  type TokenStore,
  TokenStoreError,
  type TokenStoreOperation,
} from '@crm/core';
import { checkIdArgument, checkSaveArgument, checkTokenArgument, copyStoredFields, fillAbsentFields, lookupKey } from '@crm/core/store-kit';
import { type EncryptionOptions, Keyring, SEALED_FIELDS, SEALED_PREFIX, type SealedField } from './seal.js';

const NAME = 'EncryptedTokenStore';

/** Each store's keys, out of reach of `util.inspect`, `JSON.stringify` and callers; `rekey` reads them here. */
const KEYRINGS = new WeakMap<EncryptedTokenStore, Keyring>();

/** @internal the keys of an encrypted store, for `rekey`. */
export function keyringOf(store: EncryptedTokenStore): Keyring {
  return KEYRINGS.get(store) as Keyring;
}

export class EncryptedTokenStore implements TokenStore {
  /** The wrapped store, which holds sealed values only. */
  readonly inner: TokenStore;
  /** The checked keys (also in KEYRINGS, for `rekey`). */
  readonly #keyring: Keyring;
  /** Present when the wrapped store has it: the same lock, keyed the same way. */
  declare readonly withLock?: <T>(key: string, work: (lock: HeldLock) => Promise<T>, options?: LockOptions) => Promise<T>;
  /** Present when the wrapped store has it. */
  declare readonly close?: () => Promise<void>;
  private closed = false;

  constructor(store: TokenStore, options: EncryptionOptions) {
    if (typeof store !== 'object' || store === null || typeof store.findToken !== 'function' || typeof store.saveToken !== 'function') {
      throw TokenStoreError.invalidArgument({ store: NAME, operation: 'open' }, 'expected a TokenStore to wrap');
    }
    this.inner = store;
    this.#keyring = new Keyring(options);
    KEYRINGS.set(this, this.#keyring);
    if (supportsLocking(store)) {
      this.withLock = (key, work, lockOptions) => {
        if (this.closed) return Promise.reject(TokenStoreError.closed({ store: NAME, operation: 'withLock' }));
        return store.withLock(key, work, lockOptions);
      };
    }
    if (typeof store.close === 'function') {
      this.close = async () => {
        this.closed = true;
        await store.close?.();
      };
    }
  }

  async findToken(token: OAuthToken): Promise<OAuthToken | null> {
    this.checkOpen('findToken');
    checkTokenArgument(token, NAME, 'findToken');
    const found = await this.findSealed(this.sealToken(token), token);
    if (found === null) return null;
    return fillAbsentFields(token, this.openToken(found.token, 'findToken'));
  }

  async saveToken(token: OAuthToken): Promise<void> {
    this.checkOpen('saveToken');
    checkSaveArgument(token, NAME);
    const sealed = this.sealToken(token);
    if (sealed.id === null) {
      // A token stored under an older key (or before encryption) is not what the wrapped store's own lookup
      // finds: target it by id, as findToken would have found it.
      const found = await this.findSealed(sealed.clone(), token, true);
      if (found !== null && !found.active) sealed.id = found.token.id;
    }
    await this.inner.saveToken(sealed);
    copyStoredFields(token, this.openToken(sealed, 'saveToken'));
  }

  async deleteToken(id: string): Promise<void> {
    this.checkOpen('deleteToken');
    checkIdArgument(id, NAME, 'deleteToken');
    await this.inner.deleteToken(id);
  }

  async getTokens(): Promise<OAuthToken[]> {
    this.checkOpen('getTokens');
    return (await this.inner.getTokens()).map((token) => this.openToken(token, 'getTokens'));
  }

  async deleteTokens(): Promise<void> {
    this.checkOpen('deleteTokens');
    await this.inner.deleteTokens();
  }

  async findTokenById(id: string): Promise<OAuthToken | null> {
    this.checkOpen('findTokenById');
    checkIdArgument(id, NAME, 'findTokenById');
    const token = await this.inner.findTokenById(id);
    return token === null ? null : this.openToken(token, 'findTokenById');
  }

  /**
   * Runs the wrapped store's findToken on `probe` (the caller's token, sealed) and, when the rule looks up a
   * sealed field and nothing matched under the active key, again with that value sealed under every other
   * key and as plaintext. Returns the filled probe and whether the active key's value matched. With
   * `onlyWhenOthers`, nothing is looked up when there is no other form to try (a save under one key).
   */
  private async findSealed(
    probe: OAuthToken,
    token: OAuthToken,
    onlyWhenOthers = false,
  ): Promise<{ token: OAuthToken; active: boolean } | null> {
    const key = lookupKey(token);
    const field = key !== null && key.field !== 'userName' ? key.field : null;
    const others = field === null ? [] : this.otherForms(field, key!.value);
    if (onlyWhenOthers && others.length === 0) return null;
    const fresh = probe.clone();
    if (await this.inner.findToken(probe)) return { token: probe, active: true };
    for (const other of others) {
      const retry = fresh.clone();
      retry[field!] = other;
      if (await this.inner.findToken(retry)) return { token: retry, active: false };
    }
    // A rekey in another process may have moved the value to the active key after the first probe (it only
    // ever moves values that way), so every older form missed: the active form once more.
    if (others.length > 0 && (await this.inner.findToken(fresh))) return { token: fresh, active: true };
    return null;
  }

  /** The lookup value under every key but the active one, then as stored plaintext (if plaintext is read). */
  private otherForms(field: SealedField, value: string): string[] {
    const forms = this.#keyring.keyIds.slice(1).map((keyId) => this.#keyring.seal(field, value, keyId));
    // A value that looks sealed is never looked up as plaintext: it would find the token whose ciphertext it is.
    if (this.#keyring.plaintext === 'read' && !value.startsWith(SEALED_PREFIX)) forms.push(value);
    return forms;
  }

  /** A copy of the token with every secret sealed under the active key. */
  private sealToken(token: OAuthToken): OAuthToken {
    const sealed = token.clone();
    for (const field of SEALED_FIELDS) {
      const value = token[field];
      if (value !== null) sealed[field] = this.#keyring.seal(field, value);
    }
    return sealed;
  }

  /** A copy of a stored token with every secret opened; CORRUPT_DATA names the token when one does not open. */
  private openToken(stored: OAuthToken, operation: TokenStoreOperation): OAuthToken {
    const opened = stored.clone();
    for (const field of SEALED_FIELDS) {
      const value = stored[field];
      if (value !== null) opened[field] = this.#keyring.open(field, value, { tokenId: stored.id, operation });
    }
    return opened;
  }

  /** The wrapped store's class and the key ids: never a key. */
  toJSON(): { store: string; inner: string; activeKeyId: string; keyIds: string[]; plaintext: 'read' | 'refuse' } {
    return { store: NAME, inner: innerName(this.inner), ...this.#keyring.toJSON() };
  }

  [inspect.custom](): string {
    const ring = this.#keyring;
    return `${NAME} { inner: ${innerName(this.inner)}, activeKeyId: '${ring.activeKeyId}', keyIds: [${ring.keyIds.map((id) => `'${id}'`).join(', ')}], plaintext: '${ring.plaintext}' }`;
  }

  private checkOpen(operation: TokenStoreOperation): void {
    if (this.closed) throw TokenStoreError.closed({ store: NAME, operation });
  }
}

function innerName(store: TokenStore): string {
  return (store as object).constructor?.name ?? 'TokenStore';
}

/**
 * Wraps `store` so that the client secret and the access, refresh and grant tokens are stored sealed with
 * AES-256-GCM. Throws INVALID_ARGUMENT at once for a missing or malformed key or an unknown `activeKeyId`.
 */
export function encryptedStore(store: TokenStore, options: EncryptionOptions): EncryptedTokenStore {
  return new EncryptedTokenStore(store, options);
}
