/**
 * For tests: a store's conformance options with every store it makes wrapped by `encryptedStore`, so the
 * whole suite runs on the encrypted store. Structural types keep this package free of the suite.
 */
import type { TokenStore } from '@crm/core';
import { type EncryptedTokenStore, encryptedStore } from './encrypted-store.js';
import { type EncryptionOptions, maxPlaintextBytes } from './seal.js';

const SEALED_COLUMNS = ['client_secret', 'access_token', 'refresh_token', 'grant_token'];

/** The parts of `@crm/store-conformance`'s ConformanceOptions this wrapping touches. */
export interface WrappableConformanceOptions<Store extends TokenStore> {
  create(): Store | Promise<Store>;
  destroy?(store: Store): void | Promise<void>;
  reopen?(store: Store): Store | Promise<Store>;
  injectFault?(store: Store): void | Promise<void>;
  share?(store: Store): unknown | Promise<unknown>;
  openShared?(description: unknown): Store | Promise<Store>;
  valueLimits?: Partial<Record<string, number>>;
}

/**
 * The same options over encrypted stores. Declared column limits of the secret columns become the longest
 * plaintext whose sealed value fits. The encryption options must be the same in every process (worker
 * processes load the options module and call `openShared`).
 */
// biome-ignore lint/suspicious/noExplicitAny: any store's options; the store type is read from `create`.
export function encryptedConformanceOptions<Options extends WrappableConformanceOptions<any>>(
  options: Options,
  encryption: EncryptionOptions,
): Omit<Options, keyof WrappableConformanceOptions<TokenStore>> & WrappableConformanceOptions<EncryptedTokenStore> {
  type Store = Awaited<ReturnType<Options['create']>>;
  const wrap = async (store: Store | Promise<Store>) => encryptedStore(await store, encryption);
  const inner = (store: EncryptedTokenStore) => store.inner as Store;
  const { create, destroy, reopen, injectFault, share, openShared, valueLimits, ...rest } = options;
  const wrapped: WrappableConformanceOptions<EncryptedTokenStore> = { ...rest, create: () => wrap(create()) };
  const result = wrapped as Omit<Options, keyof WrappableConformanceOptions<TokenStore>> & WrappableConformanceOptions<EncryptedTokenStore>;
  if (destroy) wrapped.destroy = (store) => destroy(inner(store));
  if (reopen) wrapped.reopen = (store) => wrap(reopen(inner(store)));
  if (injectFault) wrapped.injectFault = (store) => injectFault(inner(store));
  if (share) wrapped.share = (store) => share(inner(store));
  if (openShared) wrapped.openShared = (description) => wrap(openShared(description));
  if (valueLimits) {
    wrapped.valueLimits = Object.fromEntries(
      Object.entries(valueLimits).map(([column, limit]) => [
        column,
        SEALED_COLUMNS.includes(column) && typeof limit === 'number' ? maxPlaintextBytes(limit, encryption.activeKeyId) : limit,
      ]),
    );
  }
  return result;
}
