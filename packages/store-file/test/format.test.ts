import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OAuthToken, TokenStoreError, UserSignature } from '@crm/core';
import {
  FileStore,
  OAuthBuilder,
  type OAuthToken as ZohoOAuthToken,
  UserSignature as ZohoUserSignature,
} from '@zohocrm/typescript-sdk-8.0';
import { FileTokenStore, HEADER_LINE } from '../src/index.js';

let folder: string;
let path: string;
beforeEach(() => {
  folder = mkdtempSync(join(tmpdir(), 'crm-store-file-format-'));
  path = join(folder, 'sdk_tokens.txt');
});
afterEach(() => rmSync(folder, { recursive: true, force: true }));

const byUser = (store: FileTokenStore, name: string) => store.findToken(new OAuthToken({ userSignature: new UserSignature(name) }));

/** Every field of a token, secrets included, for exact comparison. */
const fieldsOf = (token: OAuthToken | null) => (token === null ? null : { ...token.toFields(), userSignature: token.userName });

describe("reads every dialect of Zoho's SDKs", () => {
  test('TypeScript SDK: user_mail as the second header, no quoting, \\n, no trailing newline', async () => {
    writeFileSync(
      path,
      [
        'id,user_mail,client_id,client_secret,refresh_token,access_token,grant_token,expiry_time,redirect_url,api_domain',
        '1,alice@zylker.com:10001,1000.CID,sec1,1000.rt.alice,1000.at.alice,,1764000000000,https://zylker.com/cb,https://www.zohoapis.com',
        '2,bob@zylker.com:10001,1000.CID,sec1,1000.rt.bob,,,,,https://www.zohoapis.eu',
      ].join('\n'),
    );
    const store = new FileTokenStore({ filename: path });
    expect(fieldsOf(await byUser(store, 'alice@zylker.com:10001'))).toEqual({
      id: '1',
      userSignature: 'alice@zylker.com:10001',
      clientId: '1000.CID',
      clientSecret: 'sec1',
      refreshToken: '1000.rt.alice',
      accessToken: '1000.at.alice',
      grantToken: null,
      expiryTime: 1764000000000,
      redirectUrl: 'https://zylker.com/cb',
      apiDomain: 'https://www.zohoapis.com',
    });
    const bob = await store.findTokenById('2');
    expect([bob?.accessToken, bob?.expiryTime, bob?.redirectUrl, bob?.apiDomain]).toEqual([null, null, null, 'https://www.zohoapis.eu']);
  });

  test('Node.js SDK: user_name header, bare quotes and backslashes inside unquoted fields are data', async () => {
    writeFileSync(
      path,
      [
        HEADER_LINE,
        '7,carol@zylker.com,cid,s"e\\c,rt-carol,at-carol,gt-carol,1764000000001,https://zylker.com/cb,https://www.zohoapis.in',
      ].join('\n'),
    );
    const carol = await new FileTokenStore({ filename: path }).findTokenById('7');
    expect([carol?.userName, carol?.clientSecret, carol?.grantToken, carol?.expiryTime]).toEqual([
      'carol@zylker.com',
      's"e\\c',
      'gt-carol',
      1764000000001,
    ]);
  });

  test('old 9-column layout without api_domain: read with absent api_domain, upgraded to 10 columns on the next write', async () => {
    writeFileSync(
      path,
      [
        'id,user_mail,client_id,client_secret,refresh_token,access_token,grant_token,expiry_time,redirect_url',
        '1,dave@zylker.com,cid,cs,rt-dave,at-dave,,1764000000002,https://zylker.com/cb',
        '2,erin@zylker.com,cid,cs,rt-erin,,,,',
      ].join('\n'),
    );
    const store = new FileTokenStore({ filename: path });
    const dave = await byUser(store, 'dave@zylker.com');
    expect([dave?.id, dave?.refreshToken, dave?.redirectUrl, dave?.apiDomain]).toEqual(['1', 'rt-dave', 'https://zylker.com/cb', null]);
    await store.saveToken(new OAuthToken({ userSignature: new UserSignature('erin@zylker.com'), accessToken: 'at-erin' }));
    expect(readFileSync(path, 'utf8')).toBe(
      [
        HEADER_LINE,
        '1,dave@zylker.com,cid,cs,rt-dave,at-dave,,1764000000002,https://zylker.com/cb,',
        '2,erin@zylker.com,cid,cs,rt-erin,at-erin,,,,',
      ].join('\n'),
    );
  });

  test('Python SDK: redirect_uri as the ninth header, \\r\\n line ends, RFC 4180 quoting with commas, quotes and line breaks', async () => {
    writeFileSync(
      path,
      [
        'id,user_name,client_id,client_secret,refresh_token,access_token,grant_token,expiry_time,redirect_uri,api_domain',
        '1,frank@zylker.com,cid,"sec,ret","say ""hi""",at-frank,,1764000000003,https://zylker.com/cb,https://www.zohoapis.com',
        '2,grace@zylker.com,cid,"multi\r\nline",rt-grace,,,,"",https://www.zohoapis.com.au',
        '3,heidi@zylker.com,cid,cs,rt-heidi,,,,,',
        '',
      ].join('\r\n'),
    );
    const store = new FileTokenStore({ filename: path });
    const frank = await byUser(store, 'frank@zylker.com');
    expect([frank?.clientSecret, frank?.refreshToken, frank?.redirectUrl, frank?.apiDomain]).toEqual([
      'sec,ret',
      'say "hi"',
      'https://zylker.com/cb',
      'https://www.zohoapis.com',
    ]);
    const grace = await store.findTokenById('2');
    expect([grace?.clientSecret, grace?.redirectUrl, grace?.apiDomain]).toEqual(['multi\r\nline', null, 'https://www.zohoapis.com.au']);
    // The row after a quoted line break still ends at its own \r\n.
    expect((await store.findTokenById('3'))?.apiDomain).toBeNull();
    expect(await store.getTokens()).toHaveLength(3);
  });

  test('an empty file and a header-only file hold no tokens', async () => {
    writeFileSync(path, '');
    expect(await new FileTokenStore({ filename: path }).getTokens()).toEqual([]);
    writeFileSync(path, HEADER_LINE);
    expect(await new FileTokenStore({ filename: path }).getTokens()).toEqual([]);
  });
});

describe('writes RFC 4180 CSV that round-trips byte-exact', () => {
  const hostile = [
    'plain',
    'a,b,,c,',
    'say "hello"',
    '"starts and ends with quotes"',
    'line one\r\nline two\rthree\n',
    '\n',
    'C:\\tokens\\new\\x00\\',
    ' \t padded \t ',
    'José Ñúñez 中文 🔑🦄 עברית مرحبا \u200f\u202e',
    '\ufeffbom at start',
    `1000.${'Zz9.'.repeat(16384)}`.slice(0, 65536),
  ];

  test('hostile values in every field read back identical through a store that parses the file afresh', async () => {
    const store = new FileTokenStore({ filename: path });
    const saved = hostile.map(
      (value, n) =>
        new OAuthToken({
          id: `${value.slice(0, 20)}#${n}`,
          userSignature: new UserSignature(`${value}#${n}`),
          clientId: value,
          clientSecret: value,
          refreshToken: `${value}-r${n}`,
          accessToken: `${value}-a${n}`,
          grantToken: value,
          expiryTime: 1764000000000 + n,
          redirectUrl: value,
          apiDomain: value,
        }),
    );
    for (const token of saved) await store.saveToken(token);
    const fresh = new FileTokenStore({ filename: path });
    for (const token of saved) expect(fieldsOf(await fresh.findTokenById(token.id as string))).toEqual(fieldsOf(token));
    expect(await fresh.getTokens()).toHaveLength(hostile.length);
  });

  test('quotes only the fields that need it, writes the standard header, \\n line ends and null as an empty field', async () => {
    const store = new FileTokenStore({ filename: path });
    await store.saveToken(
      new OAuthToken({
        id: 'x1',
        userSignature: new UserSignature('ivan@zylker.com'),
        clientId: 'c,id',
        clientSecret: 'q"s',
        refreshToken: 'r\nt',
      }),
    );
    expect(readFileSync(path, 'utf8')).toBe(`${HEADER_LINE}\nx1,ivan@zylker.com,"c,id","q""s","r\nt",,,,,`);
  });
});

test('rows another writer left in a form this store would not write are normalised on the next write', async () => {
  writeFileSync(path, [HEADER_LINE, '1,a@zylker.com,cid,s\rcret,rt,at,,0123,,', '2,b@zylker.com,cid,cs,rt-b,at-b,,,,'].join('\n'));
  const store = new FileTokenStore({ filename: path });
  await store.saveToken(new OAuthToken({ userSignature: new UserSignature('b@zylker.com'), accessToken: 'at-b2' }));
  expect(readFileSync(path, 'utf8')).toBe(
    [HEADER_LINE, '1,a@zylker.com,cid,"s\rcret",rt,at,,123,,', '2,b@zylker.com,cid,cs,rt-b,at-b2,,,,'].join('\n'),
  );
  expect((await new FileTokenStore({ filename: path }).findTokenById('1'))?.clientSecret).toBe('s\rcret');
});

describe("Zoho's own FileStore (@zohocrm/typescript-sdk-8.0) and this store read each other's files", () => {
  test('a file written by Zoho is read by this store', async () => {
    const zoho = new FileStore(path);
    const token = new OAuthBuilder()
      .clientId('1000.CID')
      .clientSecret('zsecret')
      .refreshToken('1000.rt.judy')
      .userSignature(new ZohoUserSignature('judy@zylker.com'))
      .build();
    token.setAccessToken('1000.at.judy');
    token.setExpiresIn('1764000000004');
    token.setAPIDomain('https://www.zohoapis.com');
    await zoho.saveToken(token);
    const judy = await byUser(new FileTokenStore({ filename: path }), 'judy@zylker.com');
    expect([judy?.id, judy?.clientSecret, judy?.refreshToken, judy?.accessToken, judy?.expiryTime, judy?.apiDomain]).toEqual([
      '1',
      'zsecret',
      '1000.rt.judy',
      '1000.at.judy',
      1764000000004,
      'https://www.zohoapis.com',
    ]);
  });

  test('a file written by this store is read by Zoho, and Zoho can update it', async () => {
    const store = new FileTokenStore({ filename: path });
    const saved = new OAuthToken({
      userSignature: new UserSignature('kim@zylker.com'),
      clientId: '1000.CID',
      clientSecret: 'ksecret',
      refreshToken: '1000.rt.kim',
      accessToken: '1000.at.kim',
      expiryTime: 1764000000005,
      apiDomain: 'https://www.zohoapis.eu',
    });
    await store.saveToken(saved);
    await store.saveToken(new OAuthToken({ userSignature: new UserSignature('lee@zylker.com'), accessToken: '1000.at.lee' }));
    const zoho = new FileStore(path);
    const found = (await zoho.findToken(
      new OAuthBuilder().userSignature(new ZohoUserSignature('kim@zylker.com')).build(),
    )) as ZohoOAuthToken | null;
    expect([
      found?.getId(),
      found?.getClientSecret(),
      found?.getRefreshToken(),
      found?.getAccessToken(),
      found?.getExpiresIn(),
      found?.getAPIDomain(),
    ]).toEqual([saved.id, 'ksecret', '1000.rt.kim', '1000.at.kim', '1764000000005', 'https://www.zohoapis.eu']);
    expect(await zoho.getTokens()).toHaveLength(2);
    // Zoho rewrites the file in place; this store notices the change and reads Zoho's update.
    const update = new OAuthBuilder().userSignature(new ZohoUserSignature('kim@zylker.com')).build();
    update.setAccessToken('1000.at.kim.2');
    const kimBefore = await byUser(store, 'kim@zylker.com');
    await zoho.saveToken(update);
    expect(kimBefore?.accessToken).toBe('1000.at.kim');
    expect((await byUser(store, 'kim@zylker.com'))?.accessToken).toBe('1000.at.kim.2');
  });
});

describe('a corrupt file gives CORRUPT_DATA naming the line, and is never overwritten', () => {
  const secret = 'TOPSECRET-refresh-value';
  const cases: Array<[name: string, content: string, line: number]> = [
    ['a row with too few columns', `${HEADER_LINE}\n1,a@zylker.com,cid,cs,rt,at,,,,\n2,b@zylker.com,cid,${secret},rt,at`, 3],
    ['a row with too many columns (an unquoted comma)', `${HEADER_LINE}\n1,a@zylker.com,cid,${secret},x,rt,at,,,,`, 2],
    ['an unknown header', `id,name,secret\n1,a@zylker.com,${secret}`, 1],
    ['a quoted field that is never closed', `${HEADER_LINE}\n1,a@zylker.com,cid,cs,rt,at,,,,\n"2,b@zylker.com,cid,${secret},rt,at,,,,`, 3],
    ['text after a closing quote', `${HEADER_LINE}\n1,a@zylker.com,cid,"${secret}"x,rt,at,,,,`, 2],
    ['an expiry time that is not a number', `${HEADER_LINE}\n1,a@zylker.com,cid,${secret},rt,at,,soon,,`, 2],
    ['a row without id', `${HEADER_LINE}\n,a@zylker.com,cid,${secret},rt,at,,,,`, 2],
    ['a bad row after a quoted line break', `${HEADER_LINE}\n1,a@zylker.com,cid,"two\nlines",rt,at,,,,\n2,b,${secret}`, 4],
  ];

  test.each(cases)('%s', async (_name, content, line) => {
    writeFileSync(path, content);
    const before = readFileSync(path);
    const store = new FileTokenStore({ filename: path });
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['findToken', () => byUser(store, 'a@zylker.com')],
      ['findTokenById', () => store.findTokenById('1')],
      ['getTokens', () => store.getTokens()],
      ['saveToken', () => store.saveToken(new OAuthToken({ userSignature: new UserSignature('new@zylker.com'), accessToken: 'at-new' }))],
      ['deleteToken', () => store.deleteToken('1')],
      ['deleteTokens', () => store.deleteTokens()],
    ];
    for (const [operation, call] of calls) {
      const error = await call().then(
        () => null,
        (thrown: unknown) => thrown,
      );
      expect(TokenStoreError.is(error)).toBe(true);
      const { code, message, operation: failed } = error as TokenStoreError;
      expect({ code, failed, namesLine: message.includes(`line ${line}`), leaksSecret: message.includes(secret) }).toEqual({
        code: 'CORRUPT_DATA',
        failed: operation,
        namesLine: true,
        leaksSecret: false,
      });
    }
    expect(readFileSync(path).equals(before)).toBe(true);
    expect(readdirSync(folder)).toEqual(['sdk_tokens.txt']);
  });
});

describe('bytes that are not UTF-8', () => {
  // A row another tool wrote in cp1252: "José" as 4A 6F 73 E9, which is not UTF-8.
  const cp1252Row = Buffer.from('2,jos\xe9@zylker.com,cid,cs,rt-jose,at-jose,,,,', 'latin1');
  const file = () =>
    Buffer.concat([
      Buffer.from(`${HEADER_LINE}\n1,a@zylker.com,cid,cs,rt-a,at-a,,,,\n`),
      cp1252Row,
      Buffer.from('\n3,b@zylker.com,cid,cs,rt-b,at-b,,,,'),
    ]);

  test("are CORRUPT_DATA naming the line, for reads and for an unrelated user's save; the file stays byte-identical", async () => {
    writeFileSync(path, file());
    const store = new FileTokenStore({ filename: path });
    for (const call of [
      () => store.getTokens(),
      () => byUser(store, 'a@zylker.com'),
      () => store.saveToken(new OAuthToken({ userSignature: new UserSignature('b@zylker.com'), accessToken: 'at-b2' })),
      () => store.deleteToken('1'),
    ]) {
      const error = await call().then(
        () => null,
        (thrown: unknown) => thrown,
      );
      expect(TokenStoreError.is(error) && [error.code, error.message.includes('line 3'), error.message.includes('UTF-8')]).toEqual([
        'CORRUPT_DATA',
        true,
        true,
      ]);
    }
    expect(readFileSync(path).equals(file())).toBe(true);
    expect(readdirSync(folder)).toEqual(['sdk_tokens.txt']);
  });

  test('UTF-8 text in every script, and a byte order mark, read as they are', async () => {
    writeFileSync(path, `\ufeff${HEADER_LINE}\n1,José Ñúñez 中文 🔑@zylker.com,cid,cs,rt,at,,,,`);
    expect((await new FileTokenStore({ filename: path }).findTokenById('1'))?.userName).toBe('José Ñúñez 中文 🔑@zylker.com');
  });
});

test('a stored NUL (written by another tool) is CORRUPT_DATA naming the line, never a token', async () => {
  writeFileSync(path, `${HEADER_LINE}\n1,a@zylker.com,cid,nul\u0000byte,rt,at,,,,`);
  const error = await new FileTokenStore({ filename: path }).getTokens().then(
    () => null,
    (thrown: unknown) => thrown,
  );
  expect(TokenStoreError.is(error) && [error.code, error.message.includes('line 2'), error.message.includes('nul')]).toEqual([
    'CORRUPT_DATA',
    true,
    false,
  ]);
});

describe('file mode', () => {
  test('a new token file has mode 0600', async () => {
    await new FileTokenStore({ filename: path }).saveToken(new OAuthToken({ accessToken: 'at' }));
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  test('a readable token file written by another tool is tightened to 0600 on the next write', async () => {
    writeFileSync(path, HEADER_LINE);
    chmodSync(path, 0o644);
    await new FileTokenStore({ filename: path }).saveToken(new OAuthToken({ accessToken: 'at' }));
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });
});
