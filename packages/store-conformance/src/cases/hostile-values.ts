import { randomBytes } from 'node:crypto';
import { OAuthToken, UserSignature } from '@crm/core';
import type { TokenColumn } from '@crm/core/store-kit';
import type { CaseContext } from '../types.js';
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

/** Values that break string-built SQL, naive CSV, glob and LIKE patterns, or byte handling. */
export const HOSTILE_VALUES: Array<[name: string, value: string]> = [
  ['single quote', "o'brien@zylker.com"],
  ['double quotes', 'say "hello"'],
  ['backslashes', 'C:\\tokens\\new\\x00\\'],
  ['commas', 'a,b,,c,'],
  ['CR LF', 'line one\r\nline two\rthree\n'],
  ['SQL injection', "x'); DROP TABLE oauthtoken; --"],
  ['SQL tautology', "' OR '1'='1"],
  ['SQL assignment in single quotes', "x', client_secret='pwned"],
  ['SQL assignment in double quotes', 'x", client_secret="pwned'],
  ['LIKE wildcards', '100%_done_%'],
  ['glob characters', 'key*?[a-z]\\*{tag}'],
  ['Redis hash tag', '{oauth}:token'],
  ['tab and spaces', ' \t padded \t '],
  ['Unicode', 'José Ñúñez 中文 🔑🦄 עברית مرحبا \u200f\u202e'],
  ['JSON', '{"id":"1","user_name":null}'],
  ['HTML', '<script>alert(1)</script>&amp;'],
];

/** Pairs that Unicode normalisation (NFC, NFKC) or a lenient collation would make equal. */
const LOOK_ALIKES: Array<[name: string, first: string, second: string]> = [
  ['e + U+0301 and precomposed é', 'caf\u0065\u0301', 'caf\u00e9'],
  ['ligature ﬁ and fi', '\ufb01le', 'file'],
  ['full-width ａｎａ and ana', '\uff41\uff4e\uff41', 'ana'],
];

/**
 * Random, so nothing can compress them: a repeated pattern would slip under limits that only show on
 * incompressible values (PostgreSQL's btree index rows stop at about 2.7 KB, whatever TOAST does to the column).
 */
function randomValue(length: number): string {
  return `1000.${randomBytes(length).toString('base64url')}`.slice(0, length);
}

const LONG_VALUES: Array<[name: string, value: string]> = [
  ['3 KB random token', randomValue(3072)],
  ['8 KB random token', randomValue(8192)],
  ['64 KB random token', randomValue(65536)],
];

/** The token field behind each of Zoho's columns (expiry_time is a number, so it has no length). */
const COLUMN_FIELDS = {
  id: 'id',
  user_name: 'userSignature',
  client_id: 'clientId',
  client_secret: 'clientSecret',
  refresh_token: 'refreshToken',
  access_token: 'accessToken',
  grant_token: 'grantToken',
  redirect_url: 'redirectUrl',
  api_domain: 'apiDomain',
} as const satisfies Partial<Record<TokenColumn, string>>;

type TextColumn = keyof typeof COLUMN_FIELDS;
type TextField = (typeof COLUMN_FIELDS)[TextColumn];

/** Sets one text field; the user signature takes the value as its name. */
function withField(token: OAuthToken, field: TextField, value: string): OAuthToken {
  const fields = token as unknown as Record<string, unknown>;
  fields[field] = field === 'userSignature' ? new UserSignature(value) : value;
  return token;
}

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
async function checkThroughReopened(context: CaseContext, expected: Array<[string, OAuthToken]>, failures: Failures): Promise<void> {
  if (!context.canReopen) return;
  const reopened = await context.reopen();
  for (const [name, token] of expected) {
    await failures.check(`${name} through a reopened store`, async () => {
      assertSameFields(await reopened.findTokenById(token.id as string), token, `${name} read by id through a reopened store`);
      if (token.userSignature === null) return;
      assertSameFields(
        await reopened.findToken(new OAuthToken({ userSignature: token.userSignature })),
        token,
        `${name} found by user name through a reopened store`,
      );
    });
  }
}

/** Every hostile value, each checked on its own so the report names all that fail. */
async function everyHostileValue(context: CaseContext, asUserName: boolean): Promise<void> {
  const failures = new Failures();
  const expected: Array<[string, OAuthToken]> = [];
  for (const [name, value] of HOSTILE_VALUES) {
    await failures.check(name, async () => {
      expected.push([name, await roundTrip(context, name, value, asUserName)]);
    });
  }
  await checkThroughReopened(context, expected, failures);
  await failures.check('count', async () =>
    assert.equal(await countTokens(context.store), HOSTILE_VALUES.length, 'each hostile value must be one token'),
  );
  failures.assertNone(asUserName ? 'hostile user names' : 'hostile secrets and tokens');
}

/** ASCII text of exactly `length` characters, random so lookups by it are unique. */
function exactly(length: number): string {
  let text = '';
  while (text.length < length) text += randomBytes(32).toString('hex');
  return text.slice(0, length);
}

/** The fields an update by user name or by id can change, with what each check calls them. */
const UPDATED_FIELDS = ['clientSecret', 'accessToken', 'refreshToken', 'grantToken', 'clientId', 'redirectUrl', 'apiDomain'] as const;

export const hostileValueCases = group('hostile-values', [
  {
    id: 'as-secrets-and-tokens',
    title: 'quotes, separators, injection payloads, wildcards and Unicode round-trip byte-exact as secrets and tokens',
    run: (context) => everyHostileValue(context, false),
  },
  {
    id: 'as-user-names',
    title: 'the same values round-trip byte-exact as user names',
    run: (context) => everyHostileValue(context, true),
  },
  {
    id: 'on-the-update-path',
    title: 'each hostile value written by an update (by user name, by id, as a new user name) reads back exact and changes no other field',
    async run(context) {
      const failures = new Failures();
      const saved: Array<[string, OAuthToken]> = [];
      for (const mode of ['by user name', 'by id'] as const) {
        for (const field of [...UPDATED_FIELDS, ...(mode === 'by id' ? (['userSignature'] as const) : [])]) {
          const base = fullToken(context);
          await context.store.saveToken(base);
          let expected = base.clone();
          for (const [name, value] of HOSTILE_VALUES) {
            const what = `${name} as ${field} in an update ${mode}`;
            await failures.check(what, async () => {
              // A rename needs a name no other token holds; the suffix comes after the payload, where it still bites.
              const written = field === 'userSignature' ? `${value}-${context.unique('renamed')}` : value;
              const update = new OAuthToken(mode === 'by id' ? { id: expected.id } : { userSignature: expected.userSignature });
              withField(update, field, written);
              // Without a token of its own the update would be INVALID_TOKEN: give it a fresh access token.
              if (field !== 'accessToken' && field !== 'refreshToken' && field !== 'grantToken')
                update.accessToken = context.unique('access');
              const next = expected.clone();
              withField(next, field, written);
              if (update.accessToken !== null) next.accessToken = update.accessToken;
              await context.store.saveToken(update);
              assertSameFields(update, next, `${what}, the saved object`);
              assertSameFields(await context.store.findTokenById(expected.id as string), next, `${what}, read back by id`);
              expected = next;
            });
            // After a failure, go on from what is stored, so one broken value does not fail every later one.
            if (failures.failedSoFar > 0) expected = (await context.store.findTokenById(expected.id as string)) ?? expected;
          }
          saved.push([`the token updated with every value as ${field} ${mode}`, expected]);
        }
      }
      for (const [name, value] of HOSTILE_VALUES) {
        await failures.check(`${name} as the user name an update looks up`, async () => {
          const token = fullToken(context, { userSignature: new UserSignature(value) });
          await context.store.saveToken(token);
          const update = new OAuthToken({ userSignature: new UserSignature(value), accessToken: context.unique('access'), expiryTime: 17 });
          await context.store.saveToken(update);
          const expected = token.clone();
          expected.accessToken = update.accessToken;
          expected.expiryTime = 17;
          assertSameFields(await context.store.findTokenById(token.id as string), expected, `${name} as the user name an update looks up`);
          await context.store.deleteToken(token.id as string);
        });
      }
      await checkThroughReopened(context, saved, failures);
      await failures.check('count', async () =>
        assert.equal(await countTokens(context.store), saved.length, 'updates must not insert or delete tokens'),
      );
      failures.assertNone('hostile values on the update path');
    },
  },
  {
    id: 'long-tokens',
    title: 'random 3 KB, 8 KB and 64 KB values round-trip byte-exact and are found, in every secret column without a declared limit',
    async run(context) {
      const limited = (column: TokenColumn) => context.valueLimits[column] !== undefined;
      const fields = (['accessToken', 'refreshToken', 'grantToken', 'clientSecret'] as const).filter(
        (field) => !limited(Object.entries(COLUMN_FIELDS).find(([, name]) => name === field)![0] as TokenColumn),
      );
      if (fields.length === 0) context.skip('every secret column has a declared limit (see declared-limits)');
      const failures = new Failures();
      const saved: Array<[string, OAuthToken]> = [];
      for (const [name, value] of LONG_VALUES) {
        await failures.check(name, async () => {
          const token = new OAuthToken({ userSignature: new UserSignature(context.unique('long')), clientId: 'cid', clientSecret: 'cs' });
          if (!fields.includes('accessToken')) token.accessToken = context.unique('access');
          for (const field of fields) token[field] = `${value}-${field}`;
          const expected = token.clone();
          await context.store.saveToken(token);
          expected.id = token.id;
          assertSameFields(await context.store.findTokenById(token.id as string), expected, `${name} by id`);
          const byAccess = await context.store.findToken(new OAuthToken({ accessToken: expected.accessToken }));
          assertSameFields(byAccess, expected, `${name} found by access token`);
          saved.push([name, expected]);
        });
      }
      await checkThroughReopened(context, saved, failures);
      failures.assertNone(`long values in ${fields.join(', ')}`);
    },
  },
  {
    id: 'declared-limits',
    title:
      'a value of exactly a declared column limit round-trips; one character more is VALUE_TOO_LONG and writes nothing, also on update',
    async run(context) {
      const limits = Object.entries(context.valueLimits).filter(
        (entry): entry is [TextColumn, number] => entry[0] in COLUMN_FIELDS && typeof entry[1] === 'number',
      );
      if (limits.length === 0) context.skip('the store declares no valueLimits');
      const failures = new Failures();
      for (const [column, limit] of limits) {
        const field = COLUMN_FIELDS[column];
        await failures.check(`${column} (limit ${limit}) on insert`, async () => {
          const token = withField(fullToken(context), field, exactly(limit));
          const expected = token.clone();
          await context.store.saveToken(token);
          expected.id = token.id;
          assertSameFields(await context.store.findTokenById(token.id as string), expected, `${column} of exactly ${limit} characters`);
          const before = await storedState(context.store);
          const tooLong = withField(fullToken(context), field, exactly(limit + 1));
          await expectStoreError(() => context.store.saveToken(tooLong), 'VALUE_TOO_LONG', `${column} of ${limit + 1} characters`);
          await assertNothingWritten(context.store, before, `after a refused ${column} of ${limit + 1} characters`);
        });
        if (field === 'id') continue; // an update never changes the id
        await failures.check(`${column} (limit ${limit}) on update`, async () => {
          const token = fullToken(context);
          await context.store.saveToken(token);
          const written = exactly(limit);
          const update = withField(new OAuthToken({ id: token.id, accessToken: context.unique('access') }), field, written);
          const expected = withField(token.clone(), field, written);
          expected.accessToken = update.accessToken;
          await context.store.saveToken(update);
          assertSameFields(await context.store.findTokenById(token.id as string), expected, `${column} of exactly ${limit} characters`);
          const before = await storedState(context.store);
          const tooLong = withField(new OAuthToken({ id: token.id, accessToken: context.unique('access') }), field, exactly(limit + 1));
          await expectStoreError(
            () => context.store.saveToken(tooLong),
            'VALUE_TOO_LONG',
            `an update with ${column} of ${limit + 1} characters`,
          );
          await assertNothingWritten(context.store, before, `after a refused update with ${column} of ${limit + 1} characters`);
        });
      }
      failures.assertNone('declared limits');
    },
  },
  {
    id: 'unicode-normalisation',
    title: 'strings equal only after Unicode normalisation (é and e + U+0301, ﬁ and fi, ａｎａ and ana) stay distinct and byte-exact',
    async run(context) {
      const failures = new Failures();
      for (const [name, first, second] of LOOK_ALIKES) {
        await failures.check(`${name} as user names`, async () => {
          const tag = context.unique('n');
          const one = fullToken(context, { userSignature: new UserSignature(`${first}-${tag}`) });
          const other = fullToken(context, { userSignature: new UserSignature(`${second}-${tag}`) });
          const expected = [one.clone(), other.clone()];
          await context.store.saveToken(one);
          await context.store.saveToken(other);
          assert.ok(one.id !== other.id, 'two user names must be two tokens');
          for (const [index, token] of [one, other].entries()) {
            expected[index]!.id = token.id;
            assertSameFields(await context.store.findTokenById(token.id as string), expected[index]!, `user ${index + 1} by id`);
            const found = await context.store.findToken(new OAuthToken({ userSignature: new UserSignature(token.userSignature!.name) }));
            assertSameFields(found, expected[index]!, `user ${index + 1} found by its own name`);
          }
          const lonely = `${first}-${context.unique('alone')}`;
          await context.store.saveToken(fullToken(context, { userSignature: new UserSignature(lonely) }));
          const lookAlike = lonely.replace(first, second);
          assert.equal(
            await context.store.findToken(new OAuthToken({ userSignature: new UserSignature(lookAlike) })),
            null,
            'the other form of a stored user name must find nothing',
          );
        });
        await failures.check(`${name} as token values`, async () => {
          const tag = context.unique('v');
          const make = (form: string) =>
            new OAuthToken({
              accessToken: `${tag}-${form}`,
              refreshToken: `${form}-${tag}`,
              clientId: 'cid',
              clientSecret: form,
              grantToken: `${tag}${form}`,
            });
          const one = make(first);
          const other = make(second);
          const expected = [one.clone(), other.clone()];
          await context.store.saveToken(one);
          await context.store.saveToken(other);
          assert.ok(one.id !== other.id, 'tokens with different access tokens must be two tokens');
          for (const [index, token] of [one, other].entries()) {
            expected[index]!.id = token.id;
            assertSameFields(await context.store.findTokenById(token.id as string), expected[index]!, `token ${index + 1} by id`);
            assertSameFields(
              await context.store.findToken(new OAuthToken({ accessToken: token.accessToken })),
              expected[index]!,
              `token ${index + 1} by its access token`,
            );
          }
          const alone = context.unique('alone');
          await context.store.saveToken(new OAuthToken({ accessToken: `${alone}-${first}` }));
          assert.equal(
            await context.store.findToken(new OAuthToken({ accessToken: `${alone}-${second}` })),
            null,
            'the other form of a stored access token must find nothing',
          );
        });
      }
      failures.assertNone('look-alike strings');
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
