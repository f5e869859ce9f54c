/**
 * Deliberately broken stores: each breaks exactly one rule of the contract, the way real stores do.
 * The suite must fail every one of them.
 */
import { OAuthToken, type TokenStore, TokenStoreError } from '@crm/core';
import {
  checkIdArgument,
  checkSaveArgument,
  checkTokenArgument,
  copyStoredFields,
  fillAbsentFields,
  isSaveable,
  type LookupKey,
  lookupKey,
  matchesLookupKey,
  planSave,
} from '@crm/core/store-kit';

export const FAULTS = {
  'ignores-precedence': 'find-rules/rule-1-user-name-only',
  'duplicates-on-save': 'upsert/update-by-user-name',
  'loses-parallel-writes': 'concurrency/parallel-new-users',
  'first-row-for-unidentifiable': 'find-rules/rule-4-nothing-identifies',
  'mangles-quotes': 'hostile-values/as-secrets-and-tokens',
  'no-id-write-back': 'upsert/insert-assigns-id',
  'saves-invalid-tokens': 'upsert/invalid-token',
  'refresh-without-credentials': 'find-rules/rule-3-needs-both-credentials',
  'torn-writes': 'concurrency/find-never-sees-a-mix',
  'new-object-on-find': 'merge/find-returns-same-object',
  'overwrites-absent-fields': 'merge/save-keeps-absent-fields',
  'expiry-in-seconds': 'round-trip/expiry-milliseconds',
  'case-insensitive': 'find-rules/exact-comparison',
  'secret-in-errors': 'bad-input/errors-hide-secrets',
  'max-id-plus-one': 'concurrency/parallel-new-users',
  'delete-tokens-everywhere': 'delete/delete-tokens-only-own',
  'accepts-empty-id': 'bad-input/bad-ids',
  'shared-returned-objects': 'round-trip/returned-tokens-are-copies',
  'like-matching': 'hostile-values/wildcards-match-literally',
  'no-conflict-check': 'upsert/rename-conflict',
} as const;

export type Fault = keyof typeof FAULTS;

const STORE = 'FaultyStore';
const everyStore = new Set<FaultyStore>();
const tick = () => new Promise((resolve) => setImmediate(resolve));

export class FaultyStore implements TokenStore {
  private tokensById = new Map<string, OAuthToken>();

  constructor(private readonly fault: Fault) {
    everyStore.add(this);
  }

  private keyFor(token: OAuthToken): LookupKey | null {
    if (this.fault === 'ignores-precedence' && token.accessToken !== null && token.clientId === null)
      return { field: 'accessToken', value: token.accessToken };
    if (
      this.fault === 'refresh-without-credentials' &&
      token.userSignature === null &&
      token.refreshToken !== null &&
      token.clientSecret === null
    ) {
      return { field: 'refreshToken', value: token.refreshToken };
    }
    return lookupKey(token);
  }

  private matches(stored: OAuthToken, key: LookupKey): boolean {
    const value = key.field === 'userName' ? (stored.userSignature?.name ?? null) : stored[key.field];
    if (value === null) return false;
    if (this.fault === 'case-insensitive') return value.toLowerCase() === key.value.toLowerCase();
    if (this.fault === 'like-matching') {
      const pattern = key.value
        .replace(/[.+^${}()|[\]\\*?]/g, '\\$&')
        .replace(/%/g, '.*')
        .replace(/_/g, '.');
      return new RegExp(`^${pattern}$`).test(value);
    }
    return matchesLookupKey(stored, key);
  }

  private findByKey(key: LookupKey, tokens = this.tokensById): OAuthToken | null {
    for (const stored of tokens.values()) if (this.matches(stored, key)) return stored;
    return null;
  }

  /** What the store writes: some faults damage values on the way in. */
  private encode(token: OAuthToken): OAuthToken {
    const stored = token.clone();
    if (this.fault === 'mangles-quotes' && stored.clientSecret !== null) stored.clientSecret = stored.clientSecret.replace(/'/g, "''");
    if (this.fault === 'expiry-in-seconds' && stored.expiryTime !== null) stored.expiryTime = Math.floor(stored.expiryTime / 1000) * 1000;
    return stored;
  }

  async findToken(token: OAuthToken): Promise<OAuthToken | null> {
    checkTokenArgument(token, STORE, 'findToken');
    const key = this.keyFor(token);
    if (key === null) {
      const first = this.fault === 'first-row-for-unidentifiable' ? this.tokensById.values().next().value : undefined;
      return first === undefined ? null : fillAbsentFields(token, first);
    }
    const stored = this.findByKey(key);
    if (stored === null) return null;
    return fillAbsentFields(this.fault === 'new-object-on-find' ? token.clone() : token, stored);
  }

  async saveToken(token: OAuthToken): Promise<void> {
    if (this.fault === 'saves-invalid-tokens' || this.fault === 'secret-in-errors') checkTokenArgument(token, STORE, 'saveToken');
    else checkSaveArgument(token, STORE);
    if (this.fault === 'secret-in-errors' && !isSaveable(token)) {
      throw TokenStoreError.invalidToken(
        { store: STORE, operation: 'saveToken' },
        `token with client secret ${token.clientSecret} has no tokens`,
      );
    }
    let tokens = this.tokensById;
    if (this.fault === 'loses-parallel-writes') {
      tokens = new Map(this.tokensById);
      await tick();
    }
    const lookup = {
      findById: (id: string) => tokens.get(id) ?? null,
      findByKey: (key: LookupKey) =>
        this.fault === 'no-conflict-check' && key.field === 'userName' && token.id !== null ? null : this.findByKey(key, tokens),
    };
    let stored: OAuthToken;
    if (this.fault === 'duplicates-on-save') {
      stored = token.clone();
      stored.id = String(tokens.size + 1);
    } else {
      const plan = planSave(lookup, token, STORE);
      stored = plan.stored;
      if (this.fault === 'overwrites-absent-fields' && plan.replaces !== null) {
        stored = token.clone();
        stored.id = plan.replaces.id;
      }
      if (this.fault === 'max-id-plus-one' && plan.replaces === null && token.id === null) {
        stored.id = String(Math.max(0, ...[...tokens.keys()].map(Number).filter(Number.isFinite)) + 1);
        await tick();
      }
    }
    if (this.fault === 'torn-writes') {
      const target = tokens.get(stored.id as string) ?? new OAuthToken({ id: stored.id });
      tokens.set(stored.id as string, target);
      for (const field of [
        'accessToken',
        'refreshToken',
        'clientId',
        'clientSecret',
        'apiDomain',
        'expiryTime',
        'userSignature',
        'grantToken',
        'redirectUrl',
      ] as const) {
        (target as unknown as Record<string, unknown>)[field] = stored[field];
        await tick();
      }
    } else {
      tokens.set(stored.id as string, this.encode(stored));
    }
    this.tokensById = tokens;
    if (this.fault !== 'no-id-write-back') copyStoredFields(token, stored);
  }

  async deleteToken(id: string): Promise<void> {
    if (this.fault !== 'accepts-empty-id') checkIdArgument(id, STORE, 'deleteToken');
    this.tokensById.delete(id);
  }

  async getTokens(): Promise<OAuthToken[]> {
    const stored = [...this.tokensById.values()];
    return this.fault === 'shared-returned-objects' ? stored : stored.map((token) => token.clone());
  }

  async deleteTokens(): Promise<void> {
    if (this.fault === 'delete-tokens-everywhere') for (const store of everyStore) store.tokensById.clear();
    else this.tokensById.clear();
  }

  async findTokenById(id: string): Promise<OAuthToken | null> {
    if (this.fault !== 'accepts-empty-id') checkIdArgument(id, STORE, 'findTokenById');
    const stored = this.tokensById.get(id) ?? null;
    if (stored === null) return null;
    return this.fault === 'shared-returned-objects' ? stored : stored.clone();
  }

  async close(): Promise<void> {
    everyStore.delete(this);
  }
}
