import { inspect } from 'node:util';
import { OAuthToken, type TokenStore, UserSignature } from '@crm/core';
import { assert, assertSameFields, countTokens, expectStoreError, fullToken, group } from './support.js';

/** Calls a store method with arguments the types forbid, as JavaScript callers can. */
function untyped(store: TokenStore): Record<string, (...args: unknown[]) => Promise<unknown>> {
  return store as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
}

export const badInputCases = group('bad-input', [
  {
    id: 'save-not-a-token',
    title: 'saveToken of something that is not an OAuthToken is INVALID_ARGUMENT and writes nothing',
    async run(context) {
      const store = untyped(context.store);
      for (const value of [undefined, null, 'token', 42, { accessToken: 'plain-object', clientId: 'c' }]) {
        await expectStoreError(() => store.saveToken!.call(context.store, value), 'INVALID_ARGUMENT', `saveToken(${typeof value})`);
      }
      assert.equal(await countTokens(context.store), 0);
    },
  },
  {
    id: 'find-not-a-token',
    title: 'findToken of something that is not an OAuthToken is INVALID_ARGUMENT',
    async run(context) {
      const store = untyped(context.store);
      for (const value of [undefined, null, 'ana@zylker.com', { userSignature: { name: 'x' } }]) {
        await expectStoreError(() => store.findToken!.call(context.store, value), 'INVALID_ARGUMENT', `findToken(${typeof value})`);
      }
    },
  },
  {
    id: 'bad-ids',
    title: 'an empty or non-string id is INVALID_ARGUMENT and deletes nothing',
    async run(context) {
      const token = fullToken(context);
      await context.store.saveToken(token);
      const store = untyped(context.store);
      for (const id of ['', undefined, null, 42, { id: token.id }]) {
        await expectStoreError(
          () => store.deleteToken!.call(context.store, id),
          'INVALID_ARGUMENT',
          `deleteToken(${JSON.stringify(id) ?? 'undefined'})`,
        );
        await expectStoreError(
          () => store.findTokenById!.call(context.store, id),
          'INVALID_ARGUMENT',
          `findTokenById(${JSON.stringify(id) ?? 'undefined'})`,
        );
      }
      assertSameFields(await context.store.findTokenById(token.id as string), token, 'the stored token');
    },
  },
  {
    id: 'bad-field-types',
    title: 'a token whose fields were set to wrong types is INVALID_ARGUMENT and writes nothing',
    async run(context) {
      const stored = fullToken(context);
      await context.store.saveToken(stored);
      const cases: Array<[string, (token: OAuthToken) => void]> = [
        ['accessToken is a number', (token) => ((token as unknown as Record<string, unknown>).accessToken = 42)],
        ['expiryTime is text', (token) => ((token as unknown as Record<string, unknown>).expiryTime = '1764000000000')],
        ['expiryTime is fractional', (token) => (token.expiryTime = 1.5)],
        ['expiryTime is out of range', (token) => (token.expiryTime = 9e15)],
        ['userSignature is a string', (token) => ((token as unknown as Record<string, unknown>).userSignature = 'ana')],
      ];
      for (const [what, spoil] of cases) {
        const token = new OAuthToken({ userSignature: stored.userSignature, accessToken: 'should-not-be-written' });
        spoil(token);
        await expectStoreError(() => context.store.saveToken(token), 'INVALID_ARGUMENT', what);
      }
      assertSameFields(await context.store.findTokenById(stored.id as string), stored, 'the stored token after refused saves');
      assert.equal(await countTokens(context.store), 1);
    },
  },
  {
    id: 'errors-hide-secrets',
    title: 'errors never show a secret, token or client secret',
    async run(context) {
      const secret = `client-secret-${context.unique('s')}`;
      const grant = `grant-${context.unique('g')}`;
      const noTokens = new OAuthToken({ userSignature: new UserSignature(context.unique('u')), clientId: 'cid', clientSecret: secret });
      const invalidToken = await expectStoreError(() => context.store.saveToken(noTokens), 'INVALID_TOKEN', 'saveToken without tokens');
      const owner = new OAuthToken({
        userSignature: new UserSignature(context.unique('owner')),
        accessToken: `access-${context.unique('a')}`,
      });
      const other = new OAuthToken({
        userSignature: new UserSignature(context.unique('other')),
        accessToken: `access-${context.unique('a')}`,
      });
      await context.store.saveToken(owner);
      await context.store.saveToken(other);
      const rename = new OAuthToken({
        id: other.id,
        userSignature: owner.userSignature,
        grantToken: grant,
        clientSecret: secret,
        clientId: 'cid',
      });
      const conflict = await expectStoreError(() => context.store.saveToken(rename), 'CONFLICT', 'rename conflict');
      const spoiled = new OAuthToken({ accessToken: grant, clientSecret: secret });
      (spoiled as unknown as Record<string, unknown>).refreshToken = 12345;
      const invalidArgument = await expectStoreError(() => context.store.saveToken(spoiled), 'INVALID_ARGUMENT', 'spoiled token');
      for (const error of [invalidToken, conflict, invalidArgument]) {
        for (const text of [error.message, String(error), error.stack ?? '']) {
          for (const value of [secret, grant, owner.accessToken as string, other.accessToken as string]) {
            assert.ok(!text.includes(value), `a ${error.code} error must not contain a secret value`);
          }
        }
      }
      const shown = inspect(rename) + JSON.stringify(rename) + String(rename);
      assert.ok(!shown.includes(secret) && !shown.includes(grant), 'inspect, JSON and toString of a token must redact secrets');
    },
  },
]);
