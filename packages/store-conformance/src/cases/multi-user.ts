import { OAuthToken } from '@crm/core';
import { assert, assertSameFields, group, saveAll, userToken } from './support.js';

export const multiUserCases = group('multi-user', [
  {
    id: 'shared-client-credentials',
    title: 'users sharing client id and secret are kept apart',
    async run(context) {
      const users = await saveAll(
        context.store,
        [1, 2, 3].map((n) => userToken(context, context.unique(`user${n}`))),
      );
      assert.equal(new Set(users.map((user) => user.id)).size, 3, 'three users need three ids');
      assert.equal((await context.store.getTokens()).length, 3);
      for (const user of users) {
        const byRefresh = new OAuthToken({ refreshToken: user.refreshToken, clientId: user.clientId, clientSecret: user.clientSecret });
        assert.equal(
          (await context.store.findToken(byRefresh))?.userSignature?.name,
          user.userSignature?.name,
          'each refresh token must find its own user',
        );
        const byUser = new OAuthToken({ userSignature: user.userSignature });
        assert.equal((await context.store.findToken(byUser))?.refreshToken, user.refreshToken, 'each user must find its own refresh token');
      }
    },
  },
  {
    id: 'twelve-in-a-row',
    title: 'twelve users saved one after another get twelve ids and are all kept (no id reused past 9, 10 or 11)',
    async run(context) {
      const users: OAuthToken[] = [];
      for (let n = 1; n <= 12; n++) {
        const user = userToken(context, context.unique(`row${n}`));
        await context.store.saveToken(user);
        users.push(user);
      }
      assert.equal(new Set(users.map((user) => user.id)).size, 12, 'twelve users need twelve ids');
      const stored = await context.store.getTokens();
      assert.equal(stored.length, 12, `twelve users saved one after another, ${stored.length} stored`);
      for (const user of users) {
        const found = await context.store.findTokenById(user.id as string);
        assert.equal(found?.userSignature?.name, user.userSignature?.name, 'each id must find the user it was given to');
      }
    },
  },
  {
    id: 'update-one-user',
    title: 'updating one user leaves the others unchanged',
    async run(context) {
      const users = await saveAll(
        context.store,
        [1, 2, 3].map((n) => userToken(context, context.unique(`user${n}`))),
      );
      const before = users.map((user) => user.clone());
      await context.store.saveToken(new OAuthToken({ userSignature: users[1]!.userSignature, accessToken: 'only-user-2', expiryTime: 99 }));
      assertSameFields(await context.store.findTokenById(users[0]!.id as string), before[0]!, 'user 1');
      assertSameFields(await context.store.findTokenById(users[2]!.id as string), before[2]!, 'user 3');
      assert.equal((await context.store.findTokenById(users[1]!.id as string))?.accessToken, 'only-user-2', 'user 2 must be updated');
    },
  },
  {
    id: 'same-user-other-client',
    title: 'one user name is one token, whatever client it comes from',
    async run(context) {
      const name = context.unique('user');
      await context.store.saveToken(userToken(context, name, { clientId: 'client-a' }));
      await context.store.saveToken(userToken(context, name, { clientId: 'client-b' }));
      const all = await context.store.getTokens();
      assert.equal(all.length, 1, 'a user name identifies one token');
      assert.equal(all[0]?.clientId, 'client-b', 'the later save must win');
    },
  },
]);
