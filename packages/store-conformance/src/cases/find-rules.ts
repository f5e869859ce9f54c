import { OAuthToken, UserSignature } from '@crm/core';
import { assert, fullToken, group } from './support.js';

export const findRulesCases = group('find-rules', [
  {
    id: 'rule-1-user-name',
    title: 'rule 1: a user name finds the token of that user',
    async run(context) {
      const token = fullToken(context);
      await context.store.saveToken(token);
      const found = await context.store.findToken(new OAuthToken({ userSignature: token.userSignature }));
      assert.equal(found?.id, token.id, 'findToken by user name must find the saved token');
    },
  },
  {
    id: 'rule-1-user-name-only',
    title: 'rule 1: with a user name, nothing else is compared',
    async run(context) {
      const ana = fullToken(context);
      const ben = fullToken(context);
      await context.store.saveToken(ana);
      await context.store.saveToken(ben);
      const mixed = new OAuthToken({
        userSignature: ana.userSignature,
        accessToken: ben.accessToken,
        clientId: ben.clientId,
        clientSecret: ben.clientSecret,
        refreshToken: ben.refreshToken,
      });
      assert.equal((await context.store.findToken(mixed))?.id, ana.id, "the user name must win over another user's tokens");
      const unknownUser = new OAuthToken({ userSignature: new UserSignature(context.unique('nobody')), accessToken: ben.accessToken });
      assert.equal(await context.store.findToken(unknownUser), null, 'an unknown user name must not fall back to the access token');
    },
  },
  {
    id: 'rule-2-access-token',
    title: 'rule 2: an access token without client credentials finds its token',
    async run(context) {
      const token = fullToken(context);
      await context.store.saveToken(token);
      const found = await context.store.findToken(new OAuthToken({ accessToken: token.accessToken }));
      assert.equal(found?.id, token.id, 'findToken by access token must find the saved token');
    },
  },
  {
    id: 'rule-2-needs-no-credentials',
    title: 'rule 2 does not apply when a client id or secret is given',
    async run(context) {
      const token = fullToken(context);
      await context.store.saveToken(token);
      const withClientId = new OAuthToken({ accessToken: token.accessToken, clientId: token.clientId });
      assert.equal(await context.store.findToken(withClientId), null, 'access token plus client id alone identifies nothing');
      const withSecret = new OAuthToken({ accessToken: token.accessToken, clientSecret: token.clientSecret });
      assert.equal(await context.store.findToken(withSecret), null, 'access token plus client secret alone identifies nothing');
    },
  },
  {
    id: 'rule-3-refresh-token',
    title: 'rule 3: a refresh token with both client credentials finds its token',
    async run(context) {
      const token = fullToken(context, { grantToken: null });
      await context.store.saveToken(token);
      const found = await context.store.findToken(
        new OAuthToken({ refreshToken: token.refreshToken, clientId: 'any-client', clientSecret: 'any-secret' }),
      );
      assert.equal(found?.id, token.id, 'findToken by refresh token must find the saved token');
    },
  },
  {
    id: 'rule-3-grant-token-first',
    title: 'rule 3: the grant token is used before the refresh token',
    async run(context) {
      const ana = fullToken(context);
      const ben = fullToken(context);
      await context.store.saveToken(ana);
      await context.store.saveToken(ben);
      const query = new OAuthToken({
        grantToken: ana.grantToken,
        refreshToken: ben.refreshToken,
        clientId: 'cid',
        clientSecret: 'csecret',
      });
      assert.equal((await context.store.findToken(query))?.id, ana.id, 'the grant token must decide');
      const unknownGrant = new OAuthToken({
        grantToken: context.unique('grant'),
        refreshToken: ben.refreshToken,
        clientId: 'cid',
        clientSecret: 'csecret',
      });
      assert.equal(await context.store.findToken(unknownGrant), null, 'an unknown grant token must not fall back to the refresh token');
    },
  },
  {
    id: 'rule-3-needs-both-credentials',
    title: 'rule 3 needs both client id and client secret',
    async run(context) {
      const token = fullToken(context);
      await context.store.saveToken(token);
      for (const query of [
        new OAuthToken({ refreshToken: token.refreshToken }),
        new OAuthToken({ refreshToken: token.refreshToken, clientId: token.clientId }),
        new OAuthToken({ grantToken: token.grantToken, clientSecret: token.clientSecret }),
      ]) {
        assert.equal(
          await context.store.findToken(query),
          null,
          'a refresh or grant token without both client credentials identifies nothing',
        );
      }
    },
  },
  {
    id: 'rule-4-nothing-identifies',
    title: 'rule 4: a token that nothing identifies finds nothing, not the first row',
    async run(context) {
      await context.store.saveToken(fullToken(context));
      await context.store.saveToken(fullToken(context));
      for (const query of [
        new OAuthToken({}),
        new OAuthToken({ clientId: 'cid', clientSecret: 'csecret' }),
        new OAuthToken({ redirectUrl: 'https://app.example.com', apiDomain: 'https://www.zohoapis.com', expiryTime: 1 }),
      ]) {
        assert.equal(await context.store.findToken(query), null, 'findToken must return null when nothing identifies the token');
      }
    },
  },
  {
    id: 'id-is-not-a-find-rule',
    title: 'findToken does not look up by id',
    async run(context) {
      const token = fullToken(context);
      await context.store.saveToken(token);
      assert.equal(
        await context.store.findToken(new OAuthToken({ id: token.id })),
        null,
        'an id alone must not identify a token in findToken',
      );
    },
  },
  {
    id: 'no-match',
    title: 'an unknown user, access, grant or refresh token finds nothing',
    async run(context) {
      await context.store.saveToken(fullToken(context));
      for (const query of [
        new OAuthToken({ userSignature: new UserSignature(context.unique('nobody')) }),
        new OAuthToken({ accessToken: context.unique('access') }),
        new OAuthToken({ grantToken: context.unique('grant'), clientId: 'cid', clientSecret: 'csecret' }),
        new OAuthToken({ refreshToken: context.unique('refresh'), clientId: 'cid', clientSecret: 'csecret' }),
      ]) {
        assert.equal(await context.store.findToken(query), null, 'an unknown key must find nothing');
      }
    },
  },
  {
    id: 'exact-comparison',
    title: 'matching is exact: case, trailing spaces and prefixes count',
    async run(context) {
      const base = context.unique('Ana.Case');
      const token = fullToken(context, { userSignature: new UserSignature(base), accessToken: `${base}-Access` });
      await context.store.saveToken(token);
      for (const near of [base.toLowerCase(), base.toUpperCase(), `${base} `, ` ${base}`, base.slice(0, -1)]) {
        assert.equal(
          await context.store.findToken(new OAuthToken({ userSignature: new UserSignature(near) })),
          null,
          'a user name that differs must not match',
        );
      }
      for (const near of [`${base}-access`, `${base}-Access `, `${base}-Acces`]) {
        assert.equal(
          await context.store.findToken(new OAuthToken({ accessToken: near })),
          null,
          'an access token that differs must not match',
        );
      }
    },
  },
]);
