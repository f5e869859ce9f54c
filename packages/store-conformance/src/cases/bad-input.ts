import { inspect } from 'node:util';
import { OAuthToken, type TokenStore, UserSignature } from '@crm/core';
import {
  assert,
  assertNothingWritten,
  assertSameFields,
  countTokens,
  expectStoreError,
  Failures,
  fullToken,
  group,
  storedState,
} from './support.js';

/** Calls a store method with arguments the types forbid, as JavaScript callers can. */
function untyped(store: TokenStore): Record<string, (...args: unknown[]) => Promise<unknown>> {
  return store as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
}

export const badInputCases = group('bad-input', [
  {
    id: 'save-not-a-token',
    title: 'saveToken of something that is not an OAuthToken is INVALID_ARGUMENT and writes nothing',
    async run(context) {
      await context.store.saveToken(fullToken(context));
      const before = await storedState(context.store);
      const store = untyped(context.store);
      for (const value of [undefined, null, 'token', 42, { accessToken: 'plain-object', clientId: 'c' }]) {
        await expectStoreError(() => store.saveToken!.call(context.store, value), 'INVALID_ARGUMENT', `saveToken(${typeof value})`);
      }
      await assertNothingWritten(context.store, before, 'after refused saves');
    },
  },
  {
    id: 'find-not-a-token',
    title: 'findToken of something that is not an OAuthToken is INVALID_ARGUMENT',
    async run(context) {
      await context.store.saveToken(fullToken(context));
      const before = await storedState(context.store);
      const store = untyped(context.store);
      for (const value of [undefined, null, 'ana@zylker.com', { userSignature: { name: 'x' } }]) {
        await expectStoreError(() => store.findToken!.call(context.store, value), 'INVALID_ARGUMENT', `findToken(${typeof value})`);
      }
      await assertNothingWritten(context.store, before, 'after refused finds');
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
      assert.equal(await countTokens(context.store), 1, 'refused calls must change nothing');
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
      const before = await storedState(context.store);
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
      await assertNothingWritten(context.store, before, 'after refused saves');
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
  {
    id: 'nul-refused',
    title: 'a NUL character (U+0000) in any string field is INVALID_ARGUMENT, on insert, update and find, and writes nothing',
    async run(context) {
      const stored = fullToken(context);
      await context.store.saveToken(stored);
      const before = await storedState(context.store);
      const failures = new Failures();
      const nul = (text: string) => `${text}\u0000${text}`;
      for (const field of STRING_FIELDS) {
        await failures.check(`NUL in ${field} given to OAuthToken`, () =>
          expectStoreError(
            async () =>
              new OAuthToken(field === 'userSignature' ? { userSignature: new UserSignature(nul('user')) } : { [field]: nul('value') }),
            'INVALID_ARGUMENT',
            `new OAuthToken with a NUL in ${field}`,
          ),
        );
        // Assigned after construction, the token reaches the store unchecked: the store must check it.
        const spoil = (token: OAuthToken) => {
          const fields = token as unknown as Record<string, unknown>;
          fields[field] = field === 'userSignature' ? { name: nul('user') } : nul('value');
          return token;
        };
        const targets: Array<[string, () => OAuthToken]> = [
          ['a new token', () => fullToken(context)],
          ['an update by user name', () => new OAuthToken({ userSignature: stored.userSignature, accessToken: context.unique('access') })],
          ['an update by id', () => new OAuthToken({ id: stored.id, accessToken: context.unique('access') })],
        ];
        for (const [what, make] of targets) {
          if (field === 'userSignature' && what === 'an update by user name') continue;
          if (field === 'id' && what === 'an update by id') continue;
          await failures.check(`NUL in ${field} of ${what}`, () =>
            expectStoreError(
              () => context.store.saveToken(spoil(make())),
              'INVALID_ARGUMENT',
              `saveToken of ${what} with a NUL in ${field}`,
            ),
          );
        }
        await failures.check(`NUL in ${field} of a find`, () =>
          expectStoreError(
            () => context.store.findToken(spoil(new OAuthToken({ userSignature: stored.userSignature }))),
            'INVALID_ARGUMENT',
            `findToken with a NUL in ${field}`,
          ),
        );
      }
      await failures.check('the stored tokens', () => assertNothingWritten(context.store, before, 'after refused saves'));
      failures.assertNone('NUL characters');
    },
  },
  {
    id: 'empty-string-is-no-token',
    title: "a token whose only access, refresh or grant token was set to '' after construction is INVALID_TOKEN and writes nothing",
    async run(context) {
      const stored = fullToken(context);
      await context.store.saveToken(stored);
      const before = await storedState(context.store);
      const failures = new Failures();
      for (const field of ['accessToken', 'refreshToken', 'grantToken'] as const) {
        const targets: Array<[string, OAuthToken]> = [
          [
            'a new user',
            new OAuthToken({ userSignature: new UserSignature(context.unique('empty')), clientId: 'cid', clientSecret: 'cs' }),
          ],
          ['the stored user', new OAuthToken({ userSignature: stored.userSignature, expiryTime: 7 })],
          ['the stored id', new OAuthToken({ id: stored.id, expiryTime: 7 })],
        ];
        for (const [what, token] of targets) {
          token[field] = '';
          await failures.check(`${field} = '' for ${what}`, () =>
            expectStoreError(() => context.store.saveToken(token), 'INVALID_TOKEN', `saveToken with only ${field} = ''`),
          );
        }
      }
      await failures.check('the stored tokens', () => assertNothingWritten(context.store, before, "after refused saves of ''"));
      failures.assertNone("tokens made of ''");
    },
  },
  {
    id: 'empty-string-finds-nothing',
    title: "findToken with only '' assigned as access, grant or refresh token returns null, even beside stored tokens without them",
    async run(context) {
      // Neither stored token has a grant token; one has no access token, the other no refresh token.
      const refreshOnly = new OAuthToken({
        userSignature: new UserSignature(context.unique('refresh-only')),
        clientId: 'cid',
        clientSecret: 'csecret',
        refreshToken: context.unique('refresh'),
      });
      const accessOnly = new OAuthToken({
        userSignature: new UserSignature(context.unique('access-only')),
        accessToken: context.unique('a'),
      });
      await context.store.saveToken(refreshOnly);
      await context.store.saveToken(accessOnly);
      const before = await storedState(context.store);
      const failures = new Failures();
      const queries: Array<[string, () => OAuthToken]> = [
        ["accessToken = ''", () => Object.assign(new OAuthToken(), { accessToken: '' })],
        [
          "grantToken = '' with client credentials",
          () => Object.assign(new OAuthToken({ clientId: 'cid', clientSecret: 'csecret' }), { grantToken: '' }),
        ],
        [
          "refreshToken = '' with client credentials",
          () => Object.assign(new OAuthToken({ clientId: 'cid', clientSecret: 'csecret' }), { refreshToken: '' }),
        ],
        [
          "accessToken = '' and an empty user name",
          () => Object.assign(new OAuthToken(), { accessToken: '', userSignature: { name: '' } }),
        ],
      ];
      for (const [what, query] of queries) {
        await failures.check(what, async () =>
          assert.equal(await context.store.findToken(query()), null, `findToken with ${what} must return null`),
        );
      }
      await failures.check('the stored tokens', () => assertNothingWritten(context.store, before, 'after finds'));
      failures.assertNone("lookups by ''");
    },
  },
]);

/** Every string field of a token (the user signature's name included). */
const STRING_FIELDS = [
  'id',
  'userSignature',
  'clientId',
  'clientSecret',
  'redirectUrl',
  'grantToken',
  'refreshToken',
  'accessToken',
  'apiDomain',
] as const;
