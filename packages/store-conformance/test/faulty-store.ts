/**
 * Deliberately broken stores: each breaks exactly one rule of the contract, the way real stores do.
 * The suite must fail every one of them.
 */
import { OAuthToken, type TokenStore, TokenStoreError, UserSignature } from '@crm/core';
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
  type TokenColumn,
  tokenSecrets,
  tokenToRow,
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

/** Faults the suite must catch with exactly these cases and no other. */
export const EXACT_FAULTS = {
  // Field by field also lets two parallel saves of one user interleave: both concurrency cases see it.
  'torn-writes-with-pauses': ['concurrency/parallel-one-user', 'concurrency/find-never-sees-a-mix'],
  'normalises-unicode': ['hostile-values/unicode-normalisation'],
  'cuts-at-quote-on-update': ['hostile-values/on-the-update-path'],
  'ignores-limits': ['hostile-values/declared-limits'],
  'secret-in-cause': [
    'faults/save-error-hides-secrets',
    'faults/update-error-hides-secrets',
    'faults/partial-update-error-hides-stored-secrets',
  ],
  'works-after-close': ['closing/calls-after-close', 'closing/close-while-busy'],
  'matches-empty-columns': ['bad-input/empty-string-finds-nothing'],
} as const;

export type Fault = keyof typeof FAULTS | keyof typeof EXACT_FAULTS;

/** The limits the faulty stores declare (a `varchar(255)` table with Zoho's `varchar(10)` id). */
export const VALUE_LIMITS: Partial<Record<TokenColumn, number>> = {
  id: 10,
  user_name: 255,
  client_secret: 255,
  access_token: 255,
  redirect_url: 255,
};

const STRING_FIELDS = ['clientId', 'clientSecret', 'redirectUrl', 'grantToken', 'refreshToken', 'accessToken', 'apiDomain'] as const;

const STORE = 'FaultyStore';
const COLUMNS = {
  clientId: 'client_id',
  clientSecret: 'client_secret',
  redirectUrl: 'redirect_url',
  grantToken: 'grant_token',
  refreshToken: 'refresh_token',
  accessToken: 'access_token',
  apiDomain: 'api_domain',
} as const satisfies Record<(typeof STRING_FIELDS)[number], TokenColumn>;
const everyStore = new Set<FaultyStore>();
const tick = () => new Promise((resolve) => setImmediate(resolve));

export class FaultyStore implements TokenStore {
  private tokensById = new Map<string, OAuthToken>();
  private failNextSave = false;
  private closed = false;

  /** `fault: null` is a correct store: it enforces the limits, and its injected fault hides the secrets. */
  constructor(
    private readonly fault: Fault | null,
    private readonly valueLimits: Partial<Record<TokenColumn, number>> = {},
  ) {
    everyStore.add(this);
  }

  /** The backend's failure for the next save; its message holds the token's values, as a trigger's would. */
  injectFault(): void {
    this.failNextSave = true;
  }

  private checkOpen(operation: 'findToken' | 'saveToken' | 'deleteToken' | 'getTokens' | 'deleteTokens' | 'findTokenById'): void {
    if (this.closed && this.fault !== 'works-after-close') throw TokenStoreError.closed({ store: STORE, operation });
  }

  private checkLimits(token: OAuthToken): void {
    if (this.fault === 'ignores-limits') return;
    const row = tokenToRow(token);
    for (const [column, limit] of Object.entries(this.valueLimits) as Array<[TokenColumn, number]>) {
      if ((row[column]?.length ?? 0) > limit) throw TokenStoreError.valueTooLong({ store: STORE, operation: 'saveToken' }, column, limit);
    }
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
    if (this.fault === 'normalises-unicode') return value.normalize('NFKC') === key.value.normalize('NFKC');
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
    if (this.fault === 'normalises-unicode') {
      for (const field of STRING_FIELDS) stored[field] = stored[field]?.normalize('NFKC') ?? null;
      if (stored.userSignature) stored.userSignature = new UserSignature(stored.userSignature.name.normalize('NFKC'));
    }
    if (this.fault === 'ignores-limits') {
      // Like a non-strict MySQL table: longer values are cut to the column without a word.
      for (const field of STRING_FIELDS) {
        const limit = this.valueLimits[COLUMNS[field]];
        if (limit !== undefined) stored[field] = stored[field]?.slice(0, limit) ?? null;
      }
      const limit = this.valueLimits.user_name;
      if (limit !== undefined && stored.userSignature) stored.userSignature = new UserSignature(stored.userSignature.name.slice(0, limit));
    }
    return stored;
  }

  async findToken(token: OAuthToken): Promise<OAuthToken | null> {
    this.checkOpen('findToken');
    const empty = (['accessToken', 'grantToken', 'refreshToken'] as const).find(
      (field) => (token as OAuthToken | undefined)?.[field] === ('' as unknown),
    );
    checkTokenArgument(token, STORE, 'findToken');
    if (this.fault === 'matches-empty-columns' && empty !== undefined && token.userSignature === null) {
      // Like `WHERE access_token = ''` on a table that stores absent values as ''.
      const stored = [...this.tokensById.values()].find((candidate) => candidate[empty] === null);
      return stored === undefined ? null : fillAbsentFields(token, stored);
    }
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
    this.checkOpen('saveToken');
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
      if (this.fault === 'cuts-at-quote-on-update' && plan.replaces !== null) {
        // `UPDATE ... SET access_token='${value}'` built from strings: the value ends at its first quote.
        const cut = (value: string) => (value.includes("'") ? value.slice(0, value.indexOf("'")) : value);
        for (const field of STRING_FIELDS) if (token[field] !== null) stored[field] = cut(token[field]) || null;
        const name = token.userSignature?.name;
        if (name !== undefined && cut(name) !== name) stored.userSignature = cut(name) ? new UserSignature(cut(name)) : null;
      }
      if (this.fault === 'overwrites-absent-fields' && plan.replaces !== null) {
        stored = token.clone();
        stored.id = plan.replaces.id;
      }
      if (this.fault === 'max-id-plus-one' && plan.replaces === null && token.id === null) {
        stored.id = String(Math.max(0, ...[...tokens.keys()].map(Number).filter(Number.isFinite)) + 1);
        await tick();
      }
    }
    this.checkLimits(stored);
    if (this.failNextSave) {
      this.failNextSave = false;
      const backend = new Error(`trigger refused the row (access_token=${token.accessToken}, client_secret=${token.clientSecret})`);
      // The correct store names the values it handled, so the copied cause drops them; the faulty one forgets.
      const secrets = this.fault === 'secret-in-cause' ? [] : tokenSecrets(token);
      throw TokenStoreError.failure({ store: STORE, operation: 'saveToken', cause: backend, secrets }, 'the backend refused the save');
    }
    if (this.fault === 'torn-writes' || this.fault === 'torn-writes-with-pauses') {
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
        if (this.fault === 'torn-writes-with-pauses') await new Promise((resolve) => setTimeout(resolve, 1));
        else await tick();
      }
    } else {
      tokens.set(stored.id as string, this.encode(stored));
    }
    this.tokensById = tokens;
    if (this.fault !== 'no-id-write-back') copyStoredFields(token, stored);
  }

  async deleteToken(id: string): Promise<void> {
    this.checkOpen('deleteToken');
    if (this.fault !== 'accepts-empty-id') checkIdArgument(id, STORE, 'deleteToken');
    this.tokensById.delete(id);
  }

  async getTokens(): Promise<OAuthToken[]> {
    this.checkOpen('getTokens');
    const stored = [...this.tokensById.values()];
    return this.fault === 'shared-returned-objects' ? stored : stored.map((token) => token.clone());
  }

  async deleteTokens(): Promise<void> {
    this.checkOpen('deleteTokens');
    if (this.fault === 'delete-tokens-everywhere') for (const store of everyStore) store.tokensById.clear();
    else this.tokensById.clear();
  }

  async findTokenById(id: string): Promise<OAuthToken | null> {
    this.checkOpen('findTokenById');
    if (this.fault !== 'accepts-empty-id') checkIdArgument(id, STORE, 'findTokenById');
    const stored = this.tokensById.get(id) ?? null;
    if (stored === null) return null;
    return this.fault === 'shared-returned-objects' ? stored : stored.clone();
  }

  async close(): Promise<void> {
    if (this.fault !== 'works-after-close') this.closed = true;
    everyStore.delete(this);
  }
}
