/**
 * Zoho's official TypeScript SDK runs its own token flow (grant code exchange, reuse, refresh, removal)
 * against the accounts emulator, keeping its tokens in our SQLiteTokenStore through toZohoTokenStore.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AccountsEmulator, startAccountsEmulator } from '@crm/accounts-emulator';
import { OAuthToken, UserSignature } from '@crm/core';
import { SQLiteTokenStore } from '@crm/store-sqlite';
import * as sdk from '@zohocrm/typescript-sdk-8.0';
import { toZohoTokenStore } from '../src/index.js';

const REDIRECT = 'https://app.example.com/cb';
let emulator: AccountsEmulator;
let folder: string;
let store: SQLiteTokenStore;

beforeAll(async () => {
  emulator = await startAccountsEmulator();
});

afterAll(async () => {
  await emulator.close();
});

beforeEach(() => {
  folder = mkdtempSync(join(tmpdir(), 'crm-zoho-sdk-'));
  store = new SQLiteTokenStore({ filename: join(folder, 'tokens.db') });
});

afterEach(async () => {
  await store.close();
  rmSync(folder, { recursive: true, force: true });
});

/** The SDK's environment: CRM calls and the accounts server both at the emulator (which reads the SDK's multipart bodies). */
const environment = () => sdk.DataCenter.setEnvironment(emulator.url, `${emulator.url}/oauth/v2/token`, emulator.url);

async function initialize(token: sdk.OAuthToken): Promise<void> {
  await new sdk.InitializeBuilder().environment(environment()).token(token).store(toZohoTokenStore(store, sdk)).initialize();
}

test('the SDK exchanges a grant code, stores the token in SQLite, reuses it, refreshes it once expired, and removes it', async () => {
  const { clientId, clientSecret } = emulator.registerClient({ redirectUri: REDIRECT });
  const code = emulator.issueGrantCode({ clientId, userEmail: 'ana@zylker.com' });
  const before = emulator.counts();
  const token = new sdk.OAuthBuilder().clientId(clientId).clientSecret(clientSecret).grantToken(code).redirectURL(REDIRECT).build();

  await initialize(token); // the SDK's getToken: findToken (miss), code exchange, CurrentUser, saveToken

  const [stored, ...others] = await store.getTokens();
  expect(others).toHaveLength(0);
  expect(stored).toBeDefined();
  if (!stored) return;
  expect(stored.userName).toMatch(/^ana@zylker\.com:\d+$/); // email:orgId, from the emulator's CurrentUser and org
  expect(stored.refreshToken).toMatch(/^1000\./);
  expect(stored.accessToken).toBe(token.getAccessToken());
  expect(stored.clientSecret).toBe(clientSecret);
  expect(stored.expiryTime).toBeGreaterThan(Date.now() + 3_500_000);
  expect(token.getId()).toBe(stored.id); // saveToken wrote the new id into the SDK's token
  expect(emulator.counts().codeExchanges - before.codeExchanges).toBe(1);

  // Reuse: a fresh token is read back by id, nothing is asked of the accounts server.
  expect(await token.getToken()).toBe(stored.accessToken);
  expect(emulator.counts().tokenRequests - before.tokenRequests).toBe(1);

  // Expired in the store: the SDK refreshes with the stored refresh token and saves the new access token.
  await store.saveToken(new OAuthToken({ id: stored.id, accessToken: stored.accessToken, expiryTime: Date.now() - 1000 }));
  const refreshed = await token.getToken();
  expect(refreshed).not.toBe(stored.accessToken);
  expect(emulator.counts().refreshes - before.refreshes).toBe(1);
  const after = await store.findTokenById(stored.id as string);
  expect(after?.accessToken).toBe(refreshed);
  expect(after?.refreshToken).toBe(stored.refreshToken);
  expect(after?.expiryTime).toBeGreaterThan(Date.now() + 3_500_000);

  expect(await token.remove()).toBe(true);
  expect(await store.getTokens()).toEqual([]);
});

test('another run of the app finds the stored user by name and refreshes through the bridge; a used grant code fails', async () => {
  const { clientId, clientSecret } = emulator.registerClient({ redirectUri: REDIRECT });
  const code = emulator.issueGrantCode({ clientId, userEmail: 'bo@zylker.com' });
  await initialize(new sdk.OAuthBuilder().clientId(clientId).clientSecret(clientSecret).grantToken(code).redirectURL(REDIRECT).build());
  const [stored] = await store.getTokens();
  if (!stored) throw new Error('nothing stored');
  // Only a user name: the SDK's findToken (rule 1 through the bridge) fills everything else from SQLite.
  await store.saveToken(new OAuthToken({ id: stored.id, accessToken: stored.accessToken, expiryTime: Date.now() - 1000 }));
  const userName = stored.userName as string;
  expect(userName).toMatch(/^bo@zylker\.com:/);
  const byName = new sdk.OAuthBuilder().userSignature(new sdk.UserSignature(userName)).build();
  await initialize(byName);
  expect(byName.getRefreshToken()).toBe(stored.refreshToken);
  expect(byName.getAccessToken()).not.toBe(stored.accessToken);
  expect((await store.findToken(new OAuthToken({ userSignature: new UserSignature(userName) })))?.accessToken).toBe(
    byName.getAccessToken(),
  );

  // The stored grant code identifies the stored token (rule 3): no new exchange.
  const sameCode = new sdk.OAuthBuilder().clientId(clientId).clientSecret(clientSecret).grantToken(code).redirectURL(REDIRECT).build();
  const exchanges = emulator.counts().codeExchanges;
  await initialize(sameCode);
  expect(sameCode.getId()).toBe(stored.id);
  expect(emulator.counts().codeExchanges).toBe(exchanges);

  // A code used elsewhere already: the emulator answers invalid_code, the SDK reports it, nothing is stored.
  const used = emulator.issueGrantCode({ clientId, userEmail: 'cy@zylker.com' });
  const form = { grant_type: 'authorization_code', code: used, client_id: clientId, client_secret: clientSecret, redirect_uri: REDIRECT };
  await fetch(`${emulator.url}/oauth/v2/token`, { method: 'POST', body: new URLSearchParams(form) });
  const usedCode = new sdk.OAuthBuilder().clientId(clientId).clientSecret(clientSecret).grantToken(used).redirectURL(REDIRECT).build();
  await expect(initialize(usedCode)).rejects.toThrow(/invalid_code/);
  expect(await store.getTokens()).toHaveLength(1);
});
