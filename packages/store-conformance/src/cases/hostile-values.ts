import { OAuthToken, UserSignature } from '@crm/core';
import type { CaseContext } from '../types.js';
import { assert, assertSameFields, countTokens, group } from './support.js';

/** Values that break string-built SQL, naive CSV, glob and LIKE patterns, or byte handling. */
export const HOSTILE_VALUES: Array<[name: string, value: string]> = [
  ['single quote', "o'brien@zylker.com"],
  ['double quotes', 'say "hello"'],
  ['backslashes', 'C:\\tokens\\new\\x00\\'],
  ['commas', 'a,b,,c,'],
  ['CR LF', 'line one\r\nline two\rthree\n'],
  ['SQL injection', "x'); DROP TABLE oauthtoken; --"],
  ['SQL tautology', "' OR '1'='1"],
  ['LIKE wildcards', '100%_done_%'],
  ['glob characters', 'key*?[a-z]\\*{tag}'],
  ['Redis hash tag', '{oauth}:token'],
  ['tab and spaces', ' \t padded \t '],
  ['Unicode', 'José Ñúñez 中文 🔑🦄 עברית مرحبا \u200f\u202e'],
  ['JSON', '{"id":"1","user_name":null}'],
  ['HTML', '<script>alert(1)</script>&amp;'],
];

const LONG_VALUES: Array<[name: string, value: string]> = [
  ['8 KB token', `1000.${'a1B2'.repeat(2048)}`.slice(0, 8192)],
  ['64 KB token', `1000.${'Zz9.'.repeat(16384)}`.slice(0, 65536)],
];

async function roundTrip(context: CaseContext, name: string, value: string, asUserName: boolean): Promise<OAuthToken> {
  const tag = context.unique('h');
  const token = new OAuthToken({
    userSignature: new UserSignature(asUserName ? value : `${tag}@zylker.com`),
    clientId: `${value}-client`,
    clientSecret: value,
    refreshToken: `${value}${tag}-refresh`,
    accessToken: `${tag}-access${value}`,
    grantToken: value,
    redirectUrl: value,
    apiDomain: value,
    expiryTime: 1764000000000,
  });
  const expected = token.clone();
  await context.store.saveToken(token);
  expected.id = token.id;
  assertSameFields(await context.store.findTokenById(token.id as string), expected, `${name} by id`);
  const byUser = await context.store.findToken(new OAuthToken({ userSignature: token.userSignature }));
  assertSameFields(byUser, expected, `${name} found by user name`);
  const byAccess = await context.store.findToken(new OAuthToken({ accessToken: token.accessToken }));
  assertSameFields(byAccess, expected, `${name} found by access token`);
  const byRefresh = await context.store.findToken(
    new OAuthToken({ refreshToken: token.refreshToken, clientId: token.clientId, clientSecret: token.clientSecret }),
  );
  assertSameFields(byRefresh, expected, `${name} found by refresh token`);
  return expected;
}

/** A store that caches what it wrote must also have stored it right: read everything back through a second store. */
async function checkThroughReopened(context: CaseContext, expected: OAuthToken[], what: string): Promise<void> {
  if (!context.canReopen) return;
  const reopened = await context.reopen();
  for (const token of expected) {
    assertSameFields(await reopened.findTokenById(token.id as string), token, `${what} read by id through a reopened store`);
    assertSameFields(
      await reopened.findToken(new OAuthToken({ userSignature: token.userSignature })),
      token,
      `${what} found by user name through a reopened store`,
    );
  }
}

export const hostileValueCases = group('hostile-values', [
  {
    id: 'as-secrets-and-tokens',
    title: 'quotes, separators, injection payloads, wildcards and Unicode round-trip byte-exact as secrets and tokens',
    async run(context) {
      const expected: OAuthToken[] = [];
      for (const [name, value] of HOSTILE_VALUES) expected.push(await roundTrip(context, name, value, false));
      await checkThroughReopened(context, expected, 'hostile secrets');
      assert.equal(await countTokens(context.store), HOSTILE_VALUES.length, 'each hostile value is one token');
    },
  },
  {
    id: 'as-user-names',
    title: 'the same values round-trip byte-exact as user names',
    async run(context) {
      const expected: OAuthToken[] = [];
      for (const [name, value] of HOSTILE_VALUES) expected.push(await roundTrip(context, name, value, true));
      await checkThroughReopened(context, expected, 'hostile user names');
      assert.equal(await countTokens(context.store), HOSTILE_VALUES.length, 'each hostile user name is one token');
    },
  },
  {
    id: 'long-tokens',
    title: '8 KB and 64 KB tokens round-trip byte-exact and are found',
    async run(context) {
      const saved: OAuthToken[] = [];
      for (const [name, value] of LONG_VALUES) {
        const token = new OAuthToken({
          userSignature: new UserSignature(context.unique('long')),
          accessToken: value,
          refreshToken: `${value}-r`,
          clientSecret: value,
          clientId: 'cid',
        });
        const expected = token.clone();
        await context.store.saveToken(token);
        expected.id = token.id;
        assertSameFields(await context.store.findTokenById(token.id as string), expected, `${name} by id`);
        assertSameFields(await context.store.findToken(new OAuthToken({ accessToken: value })), expected, `${name} found by access token`);
        saved.push(expected);
      }
      await checkThroughReopened(context, saved, 'long tokens');
    },
  },
  {
    id: 'wildcards-match-literally',
    title: 'LIKE and glob characters in a lookup match only themselves',
    async run(context) {
      const tag = context.unique('w');
      const plain = new OAuthToken({ userSignature: new UserSignature(`${tag}-abc`), accessToken: `${tag}-abc-access` });
      await context.store.saveToken(plain);
      for (const pattern of [`${tag}-%`, `${tag}-___`, `${tag}-*`, `${tag}-a?c`, `${tag}-[a]bc`, '%', '*']) {
        assert.equal(
          await context.store.findToken(new OAuthToken({ userSignature: new UserSignature(pattern) })),
          null,
          'a wildcard user name must not match',
        );
        assert.equal(
          await context.store.findToken(new OAuthToken({ accessToken: `${pattern}-access` })),
          null,
          'a wildcard access token must not match',
        );
      }
      const star = new OAuthToken({ userSignature: new UserSignature(`${tag}-*`), accessToken: `${tag}-*-access` });
      await context.store.saveToken(star);
      assert.equal(await countTokens(context.store), 2, 'a user named with a wildcard is a user of its own');
      await context.store.deleteToken(star.id as string);
      assertSameFields(await context.store.findTokenById(plain.id as string), plain, 'the plain user after deleting the wildcard user');
    },
  },
  {
    id: 'hostile-ids',
    title: 'ids with quotes and wildcards are stored and matched literally',
    async run(context) {
      const ids = ["a'b", 'a%', '*', 'x"y\\z', '{t}'];
      for (const id of ids) await context.store.saveToken(new OAuthToken({ id, accessToken: context.unique(`access-${id}`) }));
      assert.equal(await countTokens(context.store), ids.length);
      for (const id of ids) assert.equal((await context.store.findTokenById(id))?.id, id, 'a hostile id must find its own token');
      assert.equal(await context.store.findTokenById('a'), null, 'a prefix of an id must find nothing');
      await context.store.deleteToken('%');
      await context.store.deleteToken('a_');
      assert.equal(await countTokens(context.store), ids.length, 'deleting by a wildcard id must delete nothing');
    },
  },
]);
