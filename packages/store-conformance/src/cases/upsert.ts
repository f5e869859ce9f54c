import { OAuthToken, UserSignature } from '@crm/core';
import { assert, assertSameFields, countTokens, expectStoreError, fullToken, group } from './support.js';

export const upsertCases = group('upsert', [
  {
    id: 'insert-assigns-id',
    title: 'a token without id gets a new id of at most 10 characters, written back',
    async run(context) {
      const ids = new Set<string>();
      for (let i = 0; i < 5; i++) {
        const token = fullToken(context);
        await context.store.saveToken(token);
        assert.ok(
          typeof token.id === 'string' && token.id.length > 0 && token.id.length <= 10,
          'the new id must be a string of 1 to 10 characters',
        );
        ids.add(token.id);
        assert.equal((await context.store.findTokenById(token.id))?.id, token.id, 'the new id must find the token');
      }
      assert.equal(ids.size, 5, 'five new tokens need five distinct ids');
    },
  },
  {
    id: 'insert-keeps-given-id',
    title: 'a new token with its own id is stored under that id',
    async run(context) {
      const id = context.unique('id').slice(-10);
      const token = fullToken(context, { id });
      await context.store.saveToken(token);
      assert.equal(token.id, id, 'the given id must be kept');
      assertSameFields(await context.store.findTokenById(id), token, 'the token stored under its own id');
    },
  },
  {
    id: 'update-by-id',
    title: 'a token with a stored id updates that token',
    async run(context) {
      const token = fullToken(context);
      await context.store.saveToken(token);
      await context.store.saveToken(new OAuthToken({ id: token.id, accessToken: 'access-by-id' }));
      assert.equal(await countTokens(context.store), 1, 'an update by id must not insert');
      assert.equal((await context.store.findTokenById(token.id as string))?.accessToken, 'access-by-id');
    },
  },
  {
    id: 'id-wins-over-rules',
    title: "a stored id decides, even when the token's other keys belong to another token",
    async run(context) {
      const ana = fullToken(context);
      const ben = fullToken(context);
      await context.store.saveToken(ana);
      await context.store.saveToken(ben);
      await context.store.saveToken(
        new OAuthToken({ id: ana.id, refreshToken: ben.refreshToken, clientId: 'cid', clientSecret: 'csecret', accessToken: 'updated' }),
      );
      assert.equal((await context.store.findTokenById(ana.id as string))?.accessToken, 'updated', 'the token with the id must be updated');
      assertSameFields(await context.store.findTokenById(ben.id as string), ben, 'the other token');
    },
  },
  {
    id: 'update-by-user-name',
    title: 'a token without id updates the stored token of the same user',
    async run(context) {
      const token = fullToken(context);
      await context.store.saveToken(token);
      const update = new OAuthToken({ userSignature: new UserSignature(token.userSignature!.name), accessToken: 'access-by-user' });
      await context.store.saveToken(update);
      assert.equal(update.id, token.id, 'the stored id must be written back');
      assert.equal(await countTokens(context.store), 1, 'an update by user name must not insert');
      assert.equal((await context.store.findTokenById(token.id as string))?.accessToken, 'access-by-user');
    },
  },
  {
    id: 'update-by-each-key',
    title: 'a token without id or user updates by access, grant or refresh token',
    async run(context) {
      const token = fullToken(context, { userSignature: null });
      await context.store.saveToken(token);
      const updates = [
        new OAuthToken({ accessToken: token.accessToken, expiryTime: 11 }),
        new OAuthToken({ grantToken: token.grantToken, clientId: 'cid', clientSecret: 'csecret', expiryTime: 22 }),
        new OAuthToken({ refreshToken: token.refreshToken, clientId: 'cid', clientSecret: 'csecret', expiryTime: 33 }),
      ];
      for (const update of updates) {
        await context.store.saveToken(update);
        assert.equal(update.id, token.id, 'the stored id must be written back');
        assert.equal(await countTokens(context.store), 1, 'an update by key must not insert');
        assert.equal((await context.store.findTokenById(token.id as string))?.expiryTime, update.expiryTime);
      }
    },
  },
  {
    id: 'unknown-id-uses-rules',
    title: 'a token whose id is not stored updates the token its keys match, and takes its id',
    async run(context) {
      const token = fullToken(context);
      await context.store.saveToken(token);
      const update = new OAuthToken({ id: context.unique('x').slice(-10), userSignature: token.userSignature, accessToken: 'updated' });
      await context.store.saveToken(update);
      assert.equal(update.id, token.id, 'the matched token id must be written back');
      assert.equal(await countTokens(context.store), 1);
    },
  },
  {
    id: 'no-duplicates',
    title: 'saving one user many times keeps one token',
    async run(context) {
      const token = fullToken(context);
      for (let i = 0; i < 5; i++) {
        await context.store.saveToken(
          new OAuthToken({
            userSignature: token.userSignature,
            refreshToken: token.refreshToken,
            clientId: token.clientId,
            clientSecret: token.clientSecret,
            accessToken: `access-${i}`,
          }),
        );
      }
      const all = await context.store.getTokens();
      assert.equal(all.length, 1, 'one user must be one token');
      assert.equal(all[0]?.accessToken, 'access-4', 'the last save must win');
    },
  },
  {
    id: 'written-back-fields',
    title: 'after a save the object holds everything stored',
    async run(context) {
      const token = fullToken(context);
      await context.store.saveToken(token);
      const update = new OAuthToken({ userSignature: token.userSignature, accessToken: 'fresh' });
      await context.store.saveToken(update);
      const expected = token.clone();
      expected.accessToken = 'fresh';
      assertSameFields(update, expected, 'the saved object');
    },
  },
  {
    id: 'invalid-token',
    title: 'a token without access, refresh or grant token is refused with INVALID_TOKEN and nothing is written',
    async run(context) {
      const stored = fullToken(context);
      await context.store.saveToken(stored);
      const useless = new OAuthToken({
        userSignature: new UserSignature(context.unique('user')),
        clientId: 'cid',
        clientSecret: 'csecret',
        expiryTime: 5,
      });
      await expectStoreError(() => context.store.saveToken(useless), 'INVALID_TOKEN', 'saveToken without any token');
      assert.equal(useless.id, null, 'a refused token must not get an id');
      const byUser = new OAuthToken({ userSignature: stored.userSignature, expiryTime: 7 });
      await expectStoreError(() => context.store.saveToken(byUser), 'INVALID_TOKEN', 'saveToken of a known user without any token');
      assert.equal(await countTokens(context.store), 1, 'nothing may be written');
      assertSameFields(await context.store.findTokenById(stored.id as string), stored, 'the stored token after refused saves');
    },
  },
  {
    id: 'rename-conflict',
    title: "renaming a token by id to another stored user's name fails with CONFLICT and changes nothing",
    async run(context) {
      const ana = fullToken(context);
      const ben = fullToken(context);
      await context.store.saveToken(ana);
      await context.store.saveToken(ben);
      const rename = new OAuthToken({ id: ana.id, userSignature: ben.userSignature, accessToken: 'renamed' });
      await expectStoreError(() => context.store.saveToken(rename), 'CONFLICT', 'rename onto a taken user name');
      assertSameFields(await context.store.findTokenById(ana.id as string), ana, 'the renamed token');
      assertSameFields(await context.store.findTokenById(ben.id as string), ben, 'the owner of the name');
      assert.equal(await countTokens(context.store), 2);
    },
  },
  {
    id: 'rename-to-free-name',
    title: 'renaming a token by id to a free user name works',
    async run(context) {
      const ana = fullToken(context);
      await context.store.saveToken(ana);
      const newName = new UserSignature(context.unique('renamed'));
      await context.store.saveToken(new OAuthToken({ id: ana.id, userSignature: newName, accessToken: 'renamed' }));
      assert.equal(
        (await context.store.findToken(new OAuthToken({ userSignature: newName })))?.id,
        ana.id,
        'the new name must find the token',
      );
      assert.equal(
        await context.store.findToken(new OAuthToken({ userSignature: ana.userSignature })),
        null,
        'the old name must find nothing',
      );
    },
  },
]);
