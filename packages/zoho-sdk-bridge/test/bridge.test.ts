import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { OAuthToken, TokenStoreError, UserSignature } from '@crm/core';
import { SQLiteTokenStore } from '@crm/store-sqlite';
import * as sdk from '@zohocrm/typescript-sdk-8.0';
import { fromZohoTokenStore, toZohoTokenStore } from '../src/index.js';
import { adminQuery, MARIADB } from './conformance-options.js';

let folder: string;
let ours: SQLiteTokenStore;

beforeEach(() => {
  folder = mkdtempSync(join(tmpdir(), 'crm-zoho-bridge-'));
  ours = new SQLiteTokenStore({ filename: join(folder, 'tokens.db') });
});

afterEach(async () => {
  await ours.close();
  rmSync(folder, { recursive: true, force: true });
});

const zohoToken = (fields: { user?: string; access?: string; refresh?: string; expiresIn?: string }) => {
  const token = new sdk.OAuthToken(null, null, null, fields.refresh ?? null, null, null, fields.access ?? null, null);
  if (fields.user) token.setUserSignature(new sdk.UserSignature(fields.user));
  if (fields.expiresIn) token.setExpiresIn(fields.expiresIn);
  return token;
};

describe('toZohoTokenStore', () => {
  test("follows Zoho's conventions: saveToken writes the id into the token, findToken fills and returns the same object", async () => {
    const bridge = toZohoTokenStore(ours, sdk);
    const saved = zohoToken({ user: 'ana@zylker.com:1', access: 'access-1', refresh: 'refresh-1', expiresIn: '1764000000123' });
    await bridge.saveToken(saved);
    expect(saved.getId()).toMatch(/^[A-Za-z0-9]{10}$/);

    const probe = zohoToken({ user: 'ana@zylker.com:1' });
    expect(await bridge.findToken(probe)).toBe(probe);
    expect(probe.getId()).toBe(saved.getId());
    expect(probe.getRefreshToken()).toBe('refresh-1');
    expect(probe.getExpiresIn()).toBe('1764000000123'); // epoch ms as text, as Zoho keeps it
    expect(probe.getUserSignature()).toBeInstanceOf(sdk.UserSignature);
    expect(await bridge.findToken(zohoToken({ user: 'nobody' }))).toBeNull();

    const [listed] = await bridge.getTokens();
    expect(listed).toBeInstanceOf(sdk.OAuthToken);
    expect((await bridge.findTokenById(saved.getId() as string)).getAccessToken()).toBe('access-1');
    expect((await ours.findTokenById(saved.getId() as string))?.expiryTime).toBe(1764000000123);
  });

  test('an unknown id is an error, as in Zoho stores; a token our store cannot hold is INVALID_ARGUMENT and nothing is saved', async () => {
    const bridge = toZohoTokenStore(ours, sdk);
    await expect(bridge.findTokenById('missing')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: /Given ID is invalid/ });
    const error = await bridge.saveToken(zohoToken({ user: 'bo', access: 'secret-access-value', expiresIn: 'soon' })).catch((e) => e);
    expect(TokenStoreError.is(error) && error.code).toBe('INVALID_ARGUMENT');
    expect(inspect(error, { showHidden: true, depth: null })).not.toContain('secret-access-value');
    expect(await ours.getTokens()).toEqual([]);
    await expect(bridge.saveToken({ not: 'a token' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

describe('fromZohoTokenStore', () => {
  test("Zoho FileStore's thrown unknown id reads as null and a no-op delete, as our contract says", async () => {
    const store = fromZohoTokenStore(new sdk.FileStore(join(folder, 'sdk_tokens.csv')), { sdk });
    expect(await store.findTokenById('42')).toBeNull();
    await expect(store.deleteToken('42')).resolves.toBeUndefined();
    const token = new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'a-1', expiryTime: 5 });
    await store.saveToken(token);
    expect(token.id).toBe('1'); // their max(id) + 1
    expect((await store.findTokenById('1'))?.expiryTime).toBe(5);
  });

  test('their errors become TokenStoreErrors without any token value', async () => {
    const file = join(folder, 'sdk_tokens.csv');
    const store = fromZohoTokenStore(new sdk.FileStore(file), { sdk });
    rmSync(file);
    mkdirSync(file); // their store reads and rewrites the file in place: a folder fails both
    const token = new OAuthToken({
      userSignature: new UserSignature('ana'),
      accessToken: 'access-value-0123456789',
      clientSecret: 'client-secret-9876',
    });
    const error = await store.saveToken(token).catch((e) => e);
    expect(TokenStoreError.is(error) && error.code).toBe('BACKEND_FAILURE');
    const shown = inspect(error, { showHidden: true, depth: null });
    expect(shown).not.toContain('access-value-0123456789');
    expect(shown).not.toContain('client-secret-9876');
    await store.close?.();
    await expect(store.getTokens()).rejects.toMatchObject({ code: 'STORE_CLOSED' });
  });

  test('refuses unknown options', () => {
    expect(() => fromZohoTokenStore(new sdk.FileStore(join(folder, 'x.csv')), { table: 'x' } as never)).toThrow(/unknown option table/);
  });

  test("Zoho DBStore: the 11th new token gets the 10th's id (max(id) over a varchar column is '9')", async () => {
    const table = `oauthtoken_${Math.random().toString(16).slice(2, 12)}`;
    await adminQuery(
      `CREATE TABLE ${table} (id varchar(10) NOT NULL, user_name varchar(255), client_id varchar(255), client_secret varchar(255), refresh_token varchar(255), access_token varchar(255), grant_token varchar(255), expiry_time varchar(20), redirect_url varchar(255), api_domain varchar(255), primary key (id))`,
    );
    try {
      const store = fromZohoTokenStore(
        new sdk.DBStore(MARIADB.host, MARIADB.database, table, MARIADB.user, MARIADB.password, MARIADB.port),
        { sdk },
      );
      for (let n = 1; n <= 10; n++)
        await store.saveToken(new OAuthToken({ userSignature: new UserSignature(`user-${n}`), accessToken: `a-${n}` }));
      const eleventh = store.saveToken(new OAuthToken({ userSignature: new UserSignature('user-11'), accessToken: 'a-11' }));
      await expect(eleventh).rejects.toMatchObject({ code: 'BACKEND_FAILURE', cause: { code: 'ER_DUP_ENTRY' } });
      expect((await store.getTokens()).map((token) => token.id).sort()).toEqual(['1', '10', '2', '3', '4', '5', '6', '7', '8', '9']);
    } finally {
      await adminQuery(`DROP TABLE ${table}`);
    }
  });
});
