import { OAuthToken } from '@crm/core';
import { assert, assertSameFields, fullToken, group, saveAll } from './support.js';

export const deleteCases = group('delete', [
  {
    id: 'delete-token',
    title: 'deleteToken removes that token and only that one',
    async run(context) {
      const [first, second] = await saveAll(context.store, [fullToken(context), fullToken(context)]);
      await context.store.deleteToken(first!.id as string);
      assert.equal(await context.store.findTokenById(first!.id as string), null, 'the deleted token must be gone');
      assert.equal(
        await context.store.findToken(new OAuthToken({ userSignature: first!.userSignature })),
        null,
        'its user name must find nothing',
      );
      assert.equal(
        await context.store.findToken(new OAuthToken({ accessToken: first!.accessToken })),
        null,
        'its access token must find nothing',
      );
      assertSameFields(await context.store.findTokenById(second!.id as string), second!, 'the other token');
      assert.equal((await context.store.getTokens()).length, 1);
    },
  },
  {
    id: 'delete-unknown-id',
    title: 'deleting an unknown id is not an error and changes nothing',
    async run(context) {
      const token = fullToken(context);
      await context.store.saveToken(token);
      await context.store.deleteToken(context.unique('gone').slice(-10));
      await context.store.deleteToken(token.id as string);
      await context.store.deleteToken(token.id as string);
      assert.equal((await context.store.getTokens()).length, 0);
    },
  },
  {
    id: 'user-can-return',
    title: 'a deleted user can be saved again as a new token',
    async run(context) {
      const token = fullToken(context);
      await context.store.saveToken(token);
      await context.store.deleteToken(token.id as string);
      const again = fullToken(context, { userSignature: token.userSignature, accessToken: token.accessToken });
      await context.store.saveToken(again);
      assert.ok(again.id !== null);
      assert.equal((await context.store.findToken(new OAuthToken({ userSignature: token.userSignature })))?.id, again.id);
      assert.equal((await context.store.getTokens()).length, 1);
    },
  },
  {
    id: 'delete-tokens',
    title: 'deleteTokens removes every token',
    async run(context) {
      await saveAll(context.store, [fullToken(context), fullToken(context), fullToken(context)]);
      await context.store.deleteTokens();
      assert.equal((await context.store.getTokens()).length, 0, 'getTokens must be empty after deleteTokens');
      const token = fullToken(context);
      await context.store.saveToken(token);
      assert.equal((await context.store.getTokens()).length, 1, 'the store must work after deleteTokens');
    },
  },
  {
    id: 'delete-tokens-only-own',
    title: "deleteTokens leaves another store's tokens alone",
    async run(context) {
      const other = await context.createSibling();
      const kept = fullToken(context);
      await other.saveToken(kept);
      await context.store.saveToken(fullToken(context));
      await context.store.deleteTokens();
      assertSameFields(await other.findTokenById(kept.id as string), kept, "the other store's token");
      assert.equal((await other.getTokens()).length, 1);
    },
  },
  {
    id: 'empty-store',
    title: 'an empty store returns an empty list and null lookups',
    async run(context) {
      const tokens = await context.store.getTokens();
      // Arrays from a native driver may come from another realm (as under jest): check the shape, not the prototype.
      assert.ok(Array.isArray(tokens) && tokens.length === 0, 'an empty store lists no tokens');
      assert.equal(await context.store.findTokenById('nothing'), null);
      await context.store.deleteTokens();
    },
  },
  {
    id: 'get-tokens-are-fresh',
    title: 'getTokens returns a fresh object per token with distinct ids',
    async run(context) {
      await saveAll(context.store, [fullToken(context), fullToken(context), fullToken(context)]);
      const first = await context.store.getTokens();
      const second = await context.store.getTokens();
      assert.equal(new Set(first.map((token) => token.id)).size, 3, 'three tokens, three ids');
      assert.ok(
        first.every((token) => OAuthToken.isToken(token)),
        'every entry must be an OAuthToken',
      );
      assert.ok(
        first.every((token) => !second.includes(token)),
        'each call must return new objects',
      );
    },
  },
]);
