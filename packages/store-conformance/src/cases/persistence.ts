import { OAuthToken } from '@crm/core';
import { assert, assertSameFields, fullToken, group } from './support.js';

export const persistenceCases = group('persistence', [
  {
    id: 'reopen-reads-saved',
    title: 'a second store over the same storage reads every saved field',
    async run(context) {
      const token = fullToken(context);
      await context.store.saveToken(token);
      const reopened = await context.reopen();
      assertSameFields(await reopened.findTokenById(token.id as string), token, 'the token read through the reopened store');
      assert.equal((await reopened.findToken(new OAuthToken({ userSignature: token.userSignature })))?.id, token.id);
    },
  },
  {
    id: 'reopen-sees-updates-and-deletes',
    title: 'updates and deletes through one store are seen through the other',
    async run(context) {
      const first = fullToken(context);
      const second = fullToken(context);
      await context.store.saveToken(first);
      await context.store.saveToken(second);
      const reopened = await context.reopen();
      await reopened.saveToken(new OAuthToken({ userSignature: first.userSignature, accessToken: 'from-reopened' }));
      assert.equal(
        (await context.store.findTokenById(first.id as string))?.accessToken,
        'from-reopened',
        'an update must be visible to the first store',
      );
      await context.store.deleteToken(second.id as string);
      assert.equal(await reopened.findTokenById(second.id as string), null, 'a delete must be visible to the second store');
      await reopened.saveToken(new OAuthToken({ userSignature: first.userSignature, accessToken: 'again' }));
      assert.equal((await context.store.getTokens()).length, 1, 'saves through both stores must not duplicate the user');
    },
  },
]);
