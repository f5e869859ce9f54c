import { OAuthToken, UserSignature } from '@crm/core';
import { assert, countTokens, group } from './support.js';

export const concurrencyCases = group('concurrency', [
  {
    id: 'parallel-new-users',
    title: '50 parallel saves of new users give 50 tokens with 50 distinct ids',
    async run(context) {
      const tokens = Array.from(
        { length: 50 },
        (_, n) =>
          new OAuthToken({
            userSignature: new UserSignature(context.unique(`p${n}`)),
            refreshToken: context.unique('r'),
            clientId: 'cid',
            clientSecret: 'cs',
          }),
      );
      await Promise.all(tokens.map((token) => context.store.saveToken(token)));
      const stored = await context.store.getTokens();
      assert.equal(stored.length, 50, `expected 50 tokens, found ${stored.length}`);
      assert.equal(new Set(stored.map((token) => token.id)).size, 50, 'every token needs its own id');
      assert.deepEqual(
        new Set(tokens.map((token) => token.id)),
        new Set(stored.map((token) => token.id)),
        'each saved object must hold its stored id',
      );
    },
  },
  {
    id: 'parallel-one-user',
    title: '20 parallel saves for one user give one token',
    async run(context) {
      const name = context.unique('shared');
      const tokens = Array.from(
        { length: 20 },
        (_, n) => new OAuthToken({ userSignature: new UserSignature(name), accessToken: `access-${n}`, expiryTime: n }),
      );
      await Promise.all(tokens.map((token) => context.store.saveToken(token)));
      const stored = await context.store.getTokens();
      assert.equal(stored.length, 1, `expected 1 token, found ${stored.length}`);
      assert.ok(
        tokens.every((token) => token.id === stored[0]!.id),
        'every save must have written back the one id',
      );
      const winner = Number(stored[0]!.accessToken!.slice('access-'.length));
      assert.equal(stored[0]!.expiryTime, winner, 'the stored fields must all come from one save');
    },
  },
  {
    id: 'find-never-sees-a-mix',
    title: 'a find racing saves, sampling the whole time they are in flight, only ever sees complete versions',
    async run(context) {
      const name = context.unique('racy');
      const version = (n: number) =>
        new OAuthToken({
          userSignature: new UserSignature(name),
          accessToken: `access-v${n}`,
          refreshToken: `refresh-v${n}`,
          clientId: `client-v${n}`,
          clientSecret: `secret-v${n}`,
          apiDomain: `domain-v${n}`,
          grantToken: `grant-v${n}`,
          redirectUrl: `redirect-v${n}`,
          expiryTime: n,
        });
      await context.store.saveToken(version(0));
      // Four writers, each saving ten versions one after another, so saves stay in flight for a while.
      let saving = true;
      const writers = Array.from({ length: 4 }, async (_, writer) => {
        for (let n = 1; n <= 10; n++) await context.store.saveToken(version(writer * 100 + n));
      });
      const allSaved = Promise.all(writers).finally(() => {
        saving = false;
      });
      const mixes: string[] = [];
      let samples = 0;
      const sample = async () => {
        // Sample until every save settled, not a fixed number of times: a short burst can miss the window.
        do {
          // Yield to the event loop each time: a store answering from memory would otherwise starve the saves' timers.
          await new Promise((resolve) => setImmediate(resolve));
          const found = await context.store.findToken(new OAuthToken({ userSignature: new UserSignature(name) }));
          samples++;
          if (found === null) {
            mixes.push('the user was not found');
            continue;
          }
          const n = found.expiryTime;
          const wrong = (
            [
              ['accessToken', 'access'],
              ['refreshToken', 'refresh'],
              ['clientId', 'client'],
              ['clientSecret', 'secret'],
              ['apiDomain', 'domain'],
              ['grantToken', 'grant'],
              ['redirectUrl', 'redirect'],
            ] as const
          ).filter(([field, prefix]) => found[field] !== `${prefix}-v${n}`);
          if (wrong.length > 0) mixes.push(`version ${n} with ${wrong.map(([field]) => field).join(', ')} of another version`);
        } while (saving && !context.signal.aborted);
      };
      await Promise.all([allSaved, sample(), sample()]);
      assert.ok(
        mixes.length === 0,
        `${mixes.length} of ${samples} finds saw a mix of versions or nothing: ${[...new Set(mixes)].slice(0, 5).join('; ')}`,
      );
      assert.equal(await countTokens(context.store), 1);
    },
  },
  {
    id: 'parallel-mixed',
    title: 'parallel saves, updates and deletes of different users do not disturb each other',
    async run(context) {
      const users = Array.from(
        { length: 10 },
        (_, n) => new OAuthToken({ userSignature: new UserSignature(context.unique(`m${n}`)), accessToken: context.unique('a') }),
      );
      for (const user of users) await context.store.saveToken(user);
      const newcomers = Array.from(
        { length: 10 },
        (_, n) => new OAuthToken({ userSignature: new UserSignature(context.unique(`n${n}`)), accessToken: context.unique('a') }),
      );
      await Promise.all([
        ...users.slice(0, 5).map((user) => context.store.deleteToken(user.id as string)),
        ...users
          .slice(5)
          .map((user) => context.store.saveToken(new OAuthToken({ userSignature: user.userSignature, accessToken: 'updated' }))),
        ...newcomers.map((user) => context.store.saveToken(user)),
      ]);
      const stored = await context.store.getTokens();
      assert.equal(stored.length, 15, `expected 15 tokens, found ${stored.length}`);
      for (const user of users.slice(5)) assert.equal(stored.find((token) => token.id === user.id)?.accessToken, 'updated');
      for (const user of users.slice(0, 5)) assert.ok(!stored.some((token) => token.id === user.id), 'a deleted user must stay deleted');
    },
  },
]);
