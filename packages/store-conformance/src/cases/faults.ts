import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { OAuthToken, TokenStoreError, UserSignature } from '@crm/core';
import { describeError } from '../outcome.js';
import type { CaseContext } from '../types.js';
import { assert, fullToken, group } from './support.js';

type SecretField = 'clientSecret' | 'accessToken' | 'refreshToken' | 'grantToken';

/** A distinctive long value per secret field, not in Zoho's token format (so no format-based redaction hides it). */
function distinctiveSecrets(): Record<SecretField, string> {
  const value = (field: string) => `${field}-${randomBytes(20).toString('hex')}`;
  return {
    clientSecret: value('cs'),
    accessToken: value('at'),
    refreshToken: value('rt'),
    grantToken: value('gt'),
  };
}

function jsonOf(value: unknown): string {
  try {
    return JSON.stringify(value) ?? '';
  } catch {
    return '';
  }
}

/** Every rendering of the error and each cause in its chain a log could hold, named for the report. */
function renderings(error: Error): Array<[string, string]> {
  const shown: Array<[string, string]> = [
    ['util.inspect(error, { depth: Infinity, showHidden: true })', inspect(error, { depth: Infinity, showHidden: true })],
    ['JSON.stringify(error)', jsonOf(error)],
    ['String(error)', String(error)],
    ['error.stack', String(error.stack ?? '')],
  ];
  let cause: unknown = error.cause;
  for (let depth = 1; cause !== undefined && cause !== null && depth <= 10; depth++) {
    const where = `cause ${depth}`;
    shown.push([`${where}: util.inspect`, inspect(cause, { depth: Infinity, showHidden: true })]);
    shown.push([`${where}: JSON.stringify`, jsonOf(cause)]);
    shown.push([`${where}: String`, String(cause)]);
    if (typeof cause === 'object') {
      const { message, stack } = cause as { message?: unknown; stack?: unknown };
      shown.push([`${where}: message`, String(message ?? '')]);
      shown.push([`${where}: stack`, String(stack ?? '')]);
    }
    cause = typeof cause === 'object' ? (cause as { cause?: unknown }).cause : undefined;
  }
  return shown;
}

/** Asserts no secret, nor its first or last 16 characters, appears anywhere in the error. Names field and place, never the value. */
function assertHidden(error: Error, secrets: Array<[string, string]>): void {
  const leaks: string[] = [];
  for (const [where, text] of renderings(error)) {
    for (const [field, secret] of secrets) {
      if ([secret, secret.slice(0, 16), secret.slice(-16)].some((part) => text.includes(part))) leaks.push(`${field} in ${where}`);
    }
  }
  assert.ok(leaks.length === 0, `a token value reached the error: ${[...new Set(leaks)].join('; ')}`);
}

/** Awaits `action` and asserts it rejects with a TokenStoreError, whatever its code. */
async function expectAnyStoreError(action: () => Promise<unknown>, what: string): Promise<TokenStoreError> {
  try {
    await action();
  } catch (error) {
    assert.ok(TokenStoreError.is(error), `${what}: expected a TokenStoreError, got ${describeError(error)}`);
    return error;
  }
  assert.fail(`${what}: expected the injected fault to fail the save, but it succeeded`);
}

function withSecrets(token: OAuthToken, secrets: Record<SecretField, string>): OAuthToken {
  Object.assign(token, secrets);
  return token;
}

function named(secrets: Partial<Record<SecretField, string>>, prefix: string): Array<[string, string]> {
  return Object.entries(secrets).map(([field, value]) => [`${prefix}${field}`, value]);
}

async function injected(context: CaseContext): Promise<void> {
  await context.injectFault();
}

/**
 * Saves a token with distinctive secrets, injects the fault, then updates that user with the secrets `sent`
 * picks from fresh ones: the refused update's error must show neither the stored nor the sent values.
 */
async function updateAfterFault(
  context: CaseContext,
  sent: (fresh: Record<SecretField, string>) => Partial<Record<SecretField, string>>,
): Promise<void> {
  const stored = distinctiveSecrets();
  const token = withSecrets(fullToken(context), stored);
  await context.store.saveToken(token);
  const fresh = sent(distinctiveSecrets());
  await injected(context);
  const update = new OAuthToken({ userSignature: token.userSignature, ...fresh });
  const error = await expectAnyStoreError(() => context.store.saveToken(update), 'an update after injectFault');
  assertHidden(error, [...named(stored, 'stored '), ...named(fresh, 'new ')]);
}

export const faultCases = group('faults', [
  {
    id: 'save-error-hides-secrets',
    title: 'a save the backend fails (injectFault) rejects with a TokenStoreError that holds no token value, nor does any cause',
    async run(context) {
      const secrets = distinctiveSecrets();
      const token = withSecrets(new OAuthToken({ userSignature: new UserSignature(context.unique('fault')), clientId: 'cid' }), secrets);
      await injected(context);
      const error = await expectAnyStoreError(() => context.store.saveToken(token), 'saveToken after injectFault');
      assertHidden(error, named(secrets, ''));
    },
  },
  {
    id: 'update-error-hides-secrets',
    title: 'an update the backend fails (injectFault) shows neither the stored nor the new token values',
    run: (context) => updateAfterFault(context, (fresh) => fresh),
  },
  {
    id: 'partial-update-error-hides-stored-secrets',
    title: 'an update that sends only a new access token and fails (injectFault) does not show the secrets already stored',
    // The row the backend refuses holds the stored client secret, refresh and grant token, which the caller never sent.
    run: (context) => updateAfterFault(context, (fresh) => ({ accessToken: fresh.accessToken })),
  },
]);
