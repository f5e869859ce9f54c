import { MAX_EXPIRY_TIME, OAuthToken, UserSignature } from '@crm/core';
import { assert, assertSameFields, Failures, fullToken, group } from './support.js';

export const roundTripCases = group('round-trip', [
  {
    id: 'every-field',
    title: 'every field reads back byte-exact by id',
    async run(context) {
      const token = fullToken(context);
      const expected = token.clone();
      await context.store.saveToken(token);
      assert.ok(typeof token.id === 'string' && token.id.length > 0, 'saveToken must write the new id back');
      expected.id = token.id;
      assertSameFields(await context.store.findTokenById(token.id), expected, 'findTokenById');
    },
  },
  {
    id: 'null-stays-null',
    title: 'absent fields stay null',
    async run(context) {
      const token = new OAuthToken({ clientId: 'cid', clientSecret: 'csecret', refreshToken: context.unique('refresh') });
      await context.store.saveToken(token);
      const stored = await context.store.findTokenById(token.id as string);
      assert.ok(stored !== null, 'saved token not found by id');
      for (const field of ['userSignature', 'redirectUrl', 'grantToken', 'accessToken', 'expiryTime', 'apiDomain'] as const) {
        assert.equal(stored[field], null, `${field} must read back as null`);
      }
    },
  },
  {
    id: 'expiry-milliseconds',
    title: 'expiryTime is exact to the millisecond up to 8.64e15',
    async run(context) {
      for (const expiryTime of [0, 1, 999, 1764000000123, 4102444800999, MAX_EXPIRY_TIME - 1, MAX_EXPIRY_TIME]) {
        const token = new OAuthToken({ accessToken: context.unique('access'), expiryTime });
        await context.store.saveToken(token);
        const stored = await context.store.findTokenById(token.id as string);
        assert.equal(stored?.expiryTime, expiryTime, `expiryTime ${expiryTime} must read back exactly`);
        assert.equal(typeof stored?.expiryTime, 'number', 'expiryTime must read back as a number');
      }
    },
  },
  {
    id: 'get-tokens-fields',
    title: 'getTokens returns every field of every token',
    async run(context) {
      const first = fullToken(context);
      const second = fullToken(context, { grantToken: null, redirectUrl: null });
      const expected = [first.clone(), second.clone()];
      await context.store.saveToken(first);
      await context.store.saveToken(second);
      const all = await context.store.getTokens();
      assert.equal(all.length, 2, 'getTokens must return the two saved tokens');
      expected[0]!.id = first.id;
      expected[1]!.id = second.id;
      for (const token of expected) {
        assertSameFields(all.find((stored) => stored.id === token.id) ?? null, token, `getTokens entry ${token === expected[0] ? 1 : 2}`);
      }
    },
  },
  {
    id: 'returned-tokens-are-copies',
    title: 'changing a returned token does not change the stored one',
    async run(context) {
      const token = fullToken(context);
      await context.store.saveToken(token);
      const expected = token.clone();
      token.accessToken = 'changed-after-save';
      const byId = await context.store.findTokenById(token.id as string);
      assert.ok(byId !== null);
      byId.refreshToken = 'changed-on-a-read-copy';
      const [listed] = await context.store.getTokens();
      assert.ok(listed !== undefined);
      listed.clientSecret = 'changed-on-a-listed-copy';
      assertSameFields(await context.store.findTokenById(token.id as string), expected, 'stored token after changing returned objects');
    },
  },
  {
    id: 'returned-signatures-are-copies',
    title: 'changing the userSignature of a returned token never changes what the store returns for that user',
    async run(context) {
      const token = fullToken(context);
      await context.store.saveToken(token);
      const expected = token.clone();
      const userName = token.userSignature!.name;
      const intruder = context.unique('intruder');
      // Every way a caller can get at a stored signature: the saved object, each read, and the filled query.
      const returned = [
        token,
        await context.store.findTokenById(token.id as string),
        (await context.store.getTokens())[0] ?? null,
        await context.store.findToken(new OAuthToken({ accessToken: token.accessToken })),
        await context.store.findToken(new OAuthToken({ userSignature: new UserSignature(userName) })),
      ];
      for (const copy of returned) {
        if (copy === null) continue;
        const signature = copy.userSignature;
        try {
          // UserSignature is frozen: this throws in strict mode, and must not rename anything either way.
          (signature as unknown as { name: string }).name = intruder;
        } catch {}
        copy.userSignature = new UserSignature(intruder);
      }
      const failures = new Failures();
      await failures.check('findTokenById', async () =>
        assertSameFields(await context.store.findTokenById(token.id as string), expected, 'findTokenById'),
      );
      await failures.check('findToken by the user name', async () =>
        assertSameFields(
          await context.store.findToken(new OAuthToken({ userSignature: new UserSignature(userName) })),
          expected,
          'findToken',
        ),
      );
      await failures.check('getTokens', async () => {
        const listed = await context.store.getTokens();
        assert.equal(listed.length, 1, 'getTokens must list the one token');
        assertSameFields(listed[0] ?? null, expected, 'getTokens');
      });
      await failures.check('findToken by the other name', async () =>
        assert.equal(
          await context.store.findToken(new OAuthToken({ userSignature: new UserSignature(intruder) })),
          null,
          'the name assigned to a returned copy must find nothing',
        ),
      );
      failures.assertNone('the stored user after changing returned signatures');
    },
  },
]);
