import { OAuthToken } from '@crm/core';
import { assert, assertSameFields, fullToken, group } from './support.js';

export const mergeCases = group('merge', [
  {
    id: 'find-returns-same-object',
    title: 'findToken returns the very object it was given',
    async run(context) {
      const token = fullToken(context);
      await context.store.saveToken(token);
      const query = new OAuthToken({ userSignature: token.userSignature });
      assert.ok((await context.store.findToken(query)) === query, 'findToken must return its input object on a match');
    },
  },
  {
    id: 'find-fills-absent-fields',
    title: 'findToken fills every absent field from the stored token, id included',
    async run(context) {
      const token = fullToken(context);
      await context.store.saveToken(token);
      const query = new OAuthToken({ accessToken: token.accessToken });
      await context.store.findToken(query);
      assertSameFields(query, token, 'the query after findToken');
    },
  },
  {
    id: 'find-keeps-input-fields',
    title: "findToken keeps the input's own fields and changes nothing stored",
    async run(context) {
      const token = fullToken(context);
      await context.store.saveToken(token);
      const query = new OAuthToken({ userSignature: token.userSignature, accessToken: 'caller-access-token', expiryTime: 42 });
      await context.store.findToken(query);
      assert.equal(query.accessToken, 'caller-access-token', "the input's access token must be kept");
      assert.equal(query.expiryTime, 42, "the input's expiry time must be kept");
      assert.equal(query.refreshToken, token.refreshToken, 'absent fields must be filled');
      assertSameFields(await context.store.findTokenById(token.id as string), token, 'the stored token after findToken');
    },
  },
  {
    id: 'no-match-leaves-input',
    title: 'findToken without a match leaves the input unchanged',
    async run(context) {
      await context.store.saveToken(fullToken(context));
      const query = new OAuthToken({ accessToken: context.unique('unknown') });
      const before = query.clone();
      assert.equal(await context.store.findToken(query), null);
      assertSameFields(query, before, 'the unmatched query');
    },
  },
  {
    id: 'save-keeps-absent-fields',
    title: 'saveToken replaces present fields and keeps the stored value of absent ones',
    async run(context) {
      const token = fullToken(context);
      await context.store.saveToken(token);
      const update = new OAuthToken({ userSignature: token.userSignature, accessToken: 'new-access-token', expiryTime: 1900000000000 });
      await context.store.saveToken(update);
      const expected = token.clone();
      expected.accessToken = 'new-access-token';
      expected.expiryTime = 1900000000000;
      assertSameFields(await context.store.findTokenById(token.id as string), expected, 'the stored token after a partial save');
      assertSameFields(update, expected, 'the saved object after a partial save');
    },
  },
]);
