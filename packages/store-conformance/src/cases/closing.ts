import { OAuthToken, type TokenStore, TokenStoreError } from '@crm/core';
import type { CaseContext } from '../types.js';
import { assert, assertSameFields, countTokens, describeValue, expectStoreError, Failures, fullToken, group } from './support.js';

/** The store of the case, or a skip when it has no `close` (closing is optional in the contract). */
function closable(context: CaseContext): TokenStore & { close(): Promise<void> } {
  if (typeof context.store.close !== 'function') context.skip('the store has no close()');
  return context.store as TokenStore & { close(): Promise<void> };
}

/** Each of the six methods, called on `store` with arguments that would otherwise work. */
function everyMethod(context: CaseContext, store: TokenStore, token: OAuthToken): Array<[string, () => Promise<unknown>]> {
  return [
    ['saveToken', () => store.saveToken(fullToken(context))],
    ['findToken', () => store.findToken(new OAuthToken({ userSignature: token.userSignature }))],
    ['findTokenById', () => store.findTokenById(token.id as string)],
    ['getTokens', () => store.getTokens()],
    ['deleteToken', () => store.deleteToken(token.id as string)],
    ['deleteTokens', () => store.deleteTokens()],
  ];
}

export const closingCases = group('closing', [
  {
    id: 'calls-after-close',
    title: 'after close(), each of the six methods rejects with STORE_CLOSED and changes nothing; close() again resolves',
    async run(context) {
      const store = closable(context);
      const token = fullToken(context);
      await store.saveToken(token);
      await store.close();
      const failures = new Failures();
      for (const [method, call] of everyMethod(context, store, token)) {
        await failures.check(`${method} after close()`, () => expectStoreError(call, 'STORE_CLOSED', `${method} after close()`));
      }
      // A closed store says so before it looks at the arguments: also for calls that would be refused or look nothing up.
      const oddCalls: Array<[string, () => Promise<unknown>]> = [
        ['findToken with nothing to look up', () => store.findToken(new OAuthToken({ clientId: 'only-a-client-id' }))],
        ['saveToken without token material', () => store.saveToken(new OAuthToken({ clientId: 'only-a-client-id' }))],
        ["deleteToken('')", () => store.deleteToken('')],
        ['findTokenById(42)', () => store.findTokenById(42 as unknown as string)],
      ];
      for (const [what, call] of oddCalls) {
        await failures.check(`${what} after close()`, () => expectStoreError(call, 'STORE_CLOSED', `${what} after close()`));
      }
      await failures.check('close() a second time', () => store.close());
      if (context.canReopen) {
        // The storage itself must be as it was: no save, delete or deleteTokens slipped through.
        await failures.check('the storage after the refused calls', async () => {
          const reopened = await context.reopen();
          assertSameFields(
            await reopened.findTokenById(token.id as string),
            token,
            'the token saved before close(), read through a reopened store',
          );
          assert.equal(await countTokens(reopened), 1, 'calls after close() must not change the storage');
        });
      }
      failures.assertNone('calls on a closed store');
    },
  },
  {
    id: 'close-while-busy',
    title:
      'close() while calls are in flight resolves; each call settles with its result or a TokenStoreError; later calls are STORE_CLOSED',
    async run(context) {
      const store = closable(context);
      const token = fullToken(context);
      await store.saveToken(token);
      const inFlight: Array<[string, Promise<unknown>]> = [];
      for (let n = 0; n < 5; n++) {
        for (const [method, call] of everyMethod(context, store, token)) {
          if (method !== 'deleteTokens' && method !== 'deleteToken') inFlight.push([`${method} #${n + 1}`, call()]);
        }
      }
      await store.close();
      const outcomes = await Promise.allSettled(inFlight.map(([, call]) => call));
      const wrong = outcomes
        .map((outcome, index) => [inFlight[index]![0], outcome] as const)
        .filter(([, outcome]) => outcome.status === 'rejected' && !TokenStoreError.is(outcome.reason))
        .map(([what, outcome]) => `${what} rejected with ${describeValue((outcome as PromiseRejectedResult).reason?.name)}`);
      assert.ok(wrong.length === 0, `calls in flight during close() must settle with a result or a TokenStoreError: ${wrong.join('; ')}`);
      await expectStoreError(() => store.getTokens(), 'STORE_CLOSED', 'getTokens after close()');
    },
  },
]);
