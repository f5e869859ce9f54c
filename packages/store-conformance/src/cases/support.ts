import assert from 'node:assert/strict';
import { OAuthToken, TOKEN_FIELDS, type TokenStore, TokenStoreError, type TokenStoreErrorCode, UserSignature } from '@crm/core';
import { describeError } from '../outcome.js';
import type { CaseContext, ConformanceCase, ConformanceGroup } from '../types.js';

export { assert };

/** Declares the cases of one group. */
export function group(name: ConformanceGroup, cases: Array<Omit<ConformanceCase, 'group' | 'id'> & { id: string }>): ConformanceCase[] {
  return cases.map((item) => ({ ...item, id: `${name}/${item.id}`, group: name }));
}

/** A token with every field set to a value unique to this case. */
export function fullToken(context: CaseContext, overrides: ConstructorParameters<typeof OAuthToken>[0] = {}): OAuthToken {
  const tag = context.unique('t');
  return new OAuthToken({
    userSignature: new UserSignature(`${tag}@zylker.com:6000123`),
    clientId: `1000.client.${tag}`,
    clientSecret: `secret-${tag}-0123456789abcdef`,
    redirectUrl: `https://app.example.com/callback/${tag}`,
    grantToken: `1000.grant.${tag}`,
    refreshToken: `1000.refresh.${tag}`,
    accessToken: `1000.access.${tag}`,
    expiryTime: 1764000000123,
    apiDomain: 'https://www.zohoapis.eu',
    ...overrides,
  });
}

/** A token for `userName` that can be saved (refresh token with client credentials). */
export function userToken(context: CaseContext, userName: string, overrides: ConstructorParameters<typeof OAuthToken>[0] = {}): OAuthToken {
  const tag = context.unique('u');
  return new OAuthToken({
    userSignature: new UserSignature(userName),
    clientId: '1000.shared.client',
    clientSecret: 'shared-client-secret-0123456789',
    refreshToken: `1000.refresh.${tag}`,
    accessToken: `1000.access.${tag}`,
    expiryTime: 1764000000000,
    ...overrides,
  });
}

/** The fields of a token as comparable plain values (user signature as its name). */
export function fieldsOf(token: OAuthToken): Record<string, unknown> {
  const shown: Record<string, unknown> = {};
  for (const field of TOKEN_FIELDS) shown[field] = field === 'userSignature' ? (token.userSignature?.name ?? null) : token[field];
  return shown;
}

/** Asserts two tokens hold the same fields; `what` names the comparison in the failure. */
export function assertSameFields(actual: OAuthToken | null, expected: OAuthToken, what: string): void {
  assert.ok(actual !== null, `${what}: expected a token, got null`);
  assert.ok(OAuthToken.isToken(actual), `${what}: expected an OAuthToken`);
  const actualFields = fieldsOf(actual);
  for (const [field, value] of Object.entries(fieldsOf(expected))) {
    assert.ok(
      actualFields[field] === value,
      `${what}: field ${field} differs (${describeValue(actualFields[field])} instead of ${describeValue(value)})`,
    );
  }
}

/** Describes a value for a failure message without printing it (values may be secrets or 64 KB long). */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === 'string') return `a string of ${value.length} characters`;
  return `${typeof value} ${String(value).slice(0, 32)}`;
}

/** Awaits `action` and asserts it rejects with a TokenStoreError of `code`. Returns the error. */
export async function expectStoreError(action: () => Promise<unknown>, code: TokenStoreErrorCode, what: string): Promise<TokenStoreError> {
  let thrown: unknown;
  let threw = false;
  try {
    await action();
  } catch (error) {
    thrown = error;
    threw = true;
  }
  assert.ok(threw, `${what}: expected TokenStoreError ${code}, but the call succeeded`);
  // Anything else is shown whole (name, message, first stack frames): "got TypeError" alone helps nobody.
  assert.ok(TokenStoreError.is(thrown), `${what}: expected TokenStoreError ${code}, got ${describeError(thrown)}`);
  assert.ok(thrown.code === code, `${what}: expected code ${code}, got ${thrown.code} (${thrown.message})`);
  return thrown;
}

/**
 * Collects failures instead of stopping at the first, so a report names every value a store gets wrong.
 * `what` names the check (a value's description, never the value itself: it may be a secret).
 */
export class Failures {
  private readonly failed: string[] = [];
  private checked = 0;

  async check(what: string, run: () => unknown): Promise<void> {
    this.checked++;
    try {
      await run();
    } catch (error) {
      const first = describeError(error).split('\n')[0] ?? '';
      this.failed.push(first.startsWith(what) ? first : `${what}: ${first}`);
    }
  }

  /** How many checks failed until now. */
  get failedSoFar(): number {
    return this.failed.length;
  }

  /** Fails with every collected failure, on one line so the report's table shows them all. */
  assertNone(summary: string): void {
    if (this.failed.length === 0) return;
    assert.fail(`${summary}: ${this.failed.length} of ${this.checked} checks failed: ${this.failed.join('; ')}`);
  }
}

/** Every stored token as comparable fields, sorted by id: compare before and after a refused call. */
export async function storedState(store: TokenStore): Promise<string> {
  const tokens = await store.getTokens();
  const rows = tokens.map((token) => JSON.stringify(fieldsOf(token))).sort();
  return rows.join('\n');
}

/** Asserts a refused call wrote nothing: the same tokens with the same fields as `before`. */
export async function assertNothingWritten(store: TokenStore, before: string, what: string): Promise<void> {
  const after = await storedState(store);
  if (after === before) return;
  const count = (state: string) => (state === '' ? 0 : state.split('\n').length);
  assert.fail(
    `${what}: the store changed (${count(before)} tokens before, ${count(after)} after${count(before) === count(after) ? ', fields differ' : ''})`,
  );
}

/** How many tokens the store holds. */
export async function countTokens(store: TokenStore): Promise<number> {
  return (await store.getTokens()).length;
}

/** Saves the tokens one after another and returns them (now with ids). */
export async function saveAll(store: TokenStore, tokens: OAuthToken[]): Promise<OAuthToken[]> {
  for (const token of tokens) await store.saveToken(token);
  return tokens;
}
