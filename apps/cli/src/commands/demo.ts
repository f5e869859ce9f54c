/**
 * `crm-tokens demo`: the token lifecycle for three users against the accounts emulator on loopback, on any
 * store: grant exchange, an API call, expiry, one refresh shared by concurrent callers, revocation.
 */
import { type AccountsEmulator, startAccountsEmulator } from '@crm/accounts-emulator';
import { OAuthToken, TokenManager, type TokenStore, UserSignature } from '@crm/core';
import type { Command } from 'commander';
import { STORE_URL_HELP, storeOption, withStore } from '../store.js';
import { sortTokens, tokenTable } from '../table.js';

/** The demo's users. Their tokens from an earlier run are replaced; no other token is touched. */
export const DEMO_USERS = ['ana@demo.zylker.example', 'ben@demo.zylker.example', 'chloe@demo.zylker.example'] as const;
const REVOKED_USER = DEMO_USERS[1];
const REDIRECT_URL = 'https://app.zylker.example/oauth/callback';
const CONCURRENT_CALLERS = 20;
const HOUR = 60 * 60 * 1000;

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('Walk the token lifecycle for three users against a local Zoho accounts emulator, on any store')
    .addOption(storeOption())
    .addHelpText(
      'after',
      `
The demo starts an emulator of Zoho's accounts server on a free 127.0.0.1 port (nothing leaves the machine),
then for the users ${DEMO_USERS.join(', ')}:
exchanges a grant token, calls the CRM API, moves time past expiry, lets ${CONCURRENT_CALLERS} concurrent callers share one
refresh, revokes one user, and prints the stored tokens (secrets redacted). Tokens of those users left by an
earlier run are replaced; other tokens in the store are not touched.

Examples:
  crm-tokens demo                                   # into ./zohooauth.db
  crm-tokens demo --store 'postgres://postgres@127.0.0.1:5432/test?table=demo_tokens'
  crm-tokens demo --store 'redis://127.0.0.1:6379?prefix=demo'
${STORE_URL_HELP}`,
    )
    .action(async (options: { store: string }) => {
      const emulator = await startAccountsEmulator();
      try {
        await withStore(options.store, ({ store, shownUrl }) => runDemo(store, shownUrl, emulator));
      } finally {
        await emulator.close();
      }
    });
}

async function runDemo(store: TokenStore, shownUrl: string, emulator: AccountsEmulator): Promise<void> {
  console.log(`Store: ${shownUrl}`);
  console.log(`Accounts server: the emulator at ${emulator.url}, standing in for Zoho`);

  const removed = await removeDemoTokens(store);
  if (removed > 0) console.log(`Replaced ${removed} token(s) of the demo users left by an earlier run.`);

  const { clientId, clientSecret } = emulator.registerClient({ redirectUri: REDIRECT_URL });
  // The manager reads the emulator's clock, so moving that clock past expiry is seen by both.
  const manager = new TokenManager({
    store,
    accountsUrl: emulator.url,
    clientId,
    clientSecret,
    redirectUrl: REDIRECT_URL,
    clock: () => emulator.now(),
  });

  console.log('\n1. Grant exchange: each user authorises the app; the grant token is exchanged and saved');
  for (const user of DEMO_USERS) {
    const grantToken = emulator.issueGrantCode({ clientId, userEmail: user });
    await manager.getAccessToken(new OAuthToken({ grantToken }));
    const stored = await findUser(store, user);
    const minutes = Math.round(((stored?.expiryTime ?? 0) - emulator.now()) / 60_000);
    console.log(`   ${user}: saved as token ${stored?.id}, access token valid for ${minutes} min`);
  }

  console.log('\n2. Authorised API call: GET /crm/v8/users?type=CurrentUser with each stored access token');
  for (const user of DEMO_USERS) {
    const response = await manager.fetch(user, `${emulator.apiDomain}/crm/v8/users?type=CurrentUser`);
    const body = (await response.json()) as { users?: { full_name?: string }[] };
    console.log(`   ${user}: HTTP ${response.status}, user "${body.users?.[0]?.full_name ?? '?'}"`);
  }

  emulator.advance(HOUR + 60_000);
  const expired = (await demoTokens(store)).filter((token) => token.isExpired(emulator.now())).length;
  console.log(`\n3. Time moved 61 minutes ahead: ${expired} of ${DEMO_USERS.length} stored access tokens have expired`);

  console.log(`\n4. ${CONCURRENT_CALLERS} concurrent callers per user ask for an access token: one refresh each`);
  for (const user of DEMO_USERS) {
    const before = emulator.counts().refreshes;
    const accessTokens = await Promise.all(Array.from({ length: CONCURRENT_CALLERS }, () => manager.getAccessToken(user)));
    const refreshes = emulator.counts().refreshes - before;
    const distinct = new Set(accessTokens).size;
    console.log(
      `   ${user}: ${CONCURRENT_CALLERS} callers, ${refreshes} refresh at the accounts server, ${distinct === 1 ? 'one access token for all' : `${distinct} different access tokens`}`,
    );
  }

  console.log(`\n5. Revocation: ${REVOKED_USER} leaves; the token is revoked at the accounts server and deleted`);
  const revoked = await findUser(store, REVOKED_USER);
  if (revoked?.id) {
    const lastAccessToken = revoked.accessToken;
    await manager.revoke(revoked.id);
    const response = await fetch(`${emulator.apiDomain}/crm/v8/users?type=CurrentUser`, {
      headers: { Authorization: `Zoho-oauthtoken ${lastAccessToken}` },
    });
    await response.body?.cancel();
    const gone = (await store.findTokenById(revoked.id)) === null;
    console.log(`   ${REVOKED_USER}: token ${revoked.id} ${gone ? 'deleted from the store' : 'still stored'}`);
    console.log(`   its last access token now gets HTTP ${response.status} from the API`);
  }

  console.log(`\n6. Stored tokens of the demo users (secrets redacted)`);
  console.log(tokenTable(sortTokens(await demoTokens(store)), { now: emulator.now() }));
  console.log(`\nDone. See them with: crm-tokens list${shownUrl === 'sqlite:./zohooauth.db' ? '' : ' --store <url>'}`);
}

async function findUser(store: TokenStore, user: string): Promise<OAuthToken | null> {
  return store.findToken(new OAuthToken({ userSignature: new UserSignature(user) }));
}

async function demoTokens(store: TokenStore): Promise<OAuthToken[]> {
  const tokens = await Promise.all(DEMO_USERS.map((user) => findUser(store, user)));
  return tokens.filter((token): token is OAuthToken => token !== null);
}

/** Deletes the demo users' tokens from an earlier run (their refresh tokens belong to an emulator long gone). */
async function removeDemoTokens(store: TokenStore): Promise<number> {
  let removed = 0;
  for (const token of await demoTokens(store)) {
    if (token.id) {
      await store.deleteToken(token.id);
      removed += 1;
    }
  }
  return removed;
}
