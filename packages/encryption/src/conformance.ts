/**
 * For tests: a store's conformance options with every store it makes wrapped by `encryptedStore`, so the
 * whole suite runs on the encrypted store. Structural types keep this package free of the suite.
 */
import { randomBytes } from 'node:crypto';
import { OAuthToken, type TokenStore, UserSignature } from '@crm/core';
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

const SAMPLE_SECRET_FIELDS = ['clientSecret', 'accessToken', 'refreshToken', 'grantToken'] as const;

/**
 * For raw-storage tests: saves `count` users with random secrets in every secret field through `store` (the
 * encrypted one), then a new access token for the first, and returns every secret value the store was given
 * (the replaced access token too) and the first user's name (not secret: it must stay readable in storage).
 */
export async function saveSampleSecrets(store: TokenStore, count = 5): Promise<{ secrets: string[]; userName: string }> {
  const secret = (kind: string) => `1000.${kind}${randomBytes(16).toString('hex')}`;
  const tag = randomBytes(3).toString('hex');
  const tokens = Array.from(
    { length: count },
    (_, index) =>
      new OAuthToken({
        userSignature: new UserSignature(`user-${index}-${tag}@zylker.com`),
        clientId: '1000.CLIENT',
        clientSecret: secret('cs'),
        refreshToken: secret('rt'),
        accessToken: secret('at'),
        grantToken: secret('gt'),
        expiryTime: Date.now() + 3_600_000,
      }),
  );
  const secrets = tokens.flatMap((token) => SAMPLE_SECRET_FIELDS.map((field) => token[field] as string));
  for (const token of tokens) await store.saveToken(token);
  const update = new OAuthToken({ id: tokens[0]!.id, accessToken: secret('at') });
  await store.saveToken(update);
  secrets.push(update.accessToken as string);
  return { secrets, userName: tokens[0]!.userSignature!.name };
}

/**
 * Which of `secrets` show in `raw` (a dump of the storage: file bytes, rows, hashes), as they are or in base64,
 * base64url or hex: descriptions such as `secret 3 as base64`, never the values. Empty when none shows.
 */
export function secretsShownIn(raw: string, secrets: readonly string[]): string[] {
  const shown: string[] = [];
  secrets.forEach((secret, index) => {
    const bytes = Buffer.from(secret, 'utf8');
    const forms: Array<[string, string]> = [
      ['as it is', secret],
      ['as base64', bytes.toString('base64')],
      ['as base64url', bytes.toString('base64url')],
      ['as hex', bytes.toString('hex')],
      ['as upper-case hex', bytes.toString('hex').toUpperCase()],
    ];
    for (const [how, form] of forms) if (raw.includes(form)) shown.push(`secret ${index} ${how}`);
  });
  return shown;
}
