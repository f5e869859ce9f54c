import { inspect } from 'node:util';
import { MAX_EXPIRY_TIME, OAuthToken, TokenStoreError, UserSignature } from '../src/index';

const SECRET = 'client-secret-0123456789abcdef';
const REFRESH = '1000.refresh.0123456789abcdef.WXYZ';
const ACCESS = '1000.access.0123456789abcdef.QRST';
const GRANT = '1000.grant.0123456789abcdef.KLMN';

function fullToken(): OAuthToken {
  return new OAuthToken({
    clientId: '1000.CLIENT',
    clientSecret: SECRET,
    refreshToken: REFRESH,
    accessToken: ACCESS,
    grantToken: GRANT,
    userSignature: new UserSignature('ana@zylker.com:6000123'),
    expiryTime: 1764000000123,
    redirectUrl: 'https://app.example.com/cb',
    apiDomain: 'https://www.zohoapis.eu',
  });
}

describe('OAuthToken', () => {
  test('is built from a plain object; absent and empty fields read as null', () => {
    const token = new OAuthToken({ clientId: 'cid', clientSecret: '', refreshToken: REFRESH });
    expect(token.clientId).toBe('cid');
    expect(token.clientSecret).toBeNull();
    expect(token.accessToken).toBeNull();
    expect(token.userSignature).toBeNull();
    expect(token.expiryTime).toBeNull();
    expect(token.userName).toBeNull();
    expect(new OAuthToken().id).toBeNull();
  });

  test('an empty user name reads as no user', () => {
    expect(new OAuthToken({ userSignature: { name: '' } as UserSignature }).userSignature).toBeNull();
    expect(new OAuthToken({ userSignature: new UserSignature('ana') }).userName).toBe('ana');
  });

  test.each([
    ['a number where text belongs', { accessToken: 42 }],
    ['fractional expiry', { expiryTime: 1.5 }],
    ['expiry beyond a Date', { expiryTime: MAX_EXPIRY_TIME + 1 }],
    ['expiry as text', { expiryTime: '1764000000000' }],
    ['a user signature that is a string', { userSignature: 'ana' }],
    ['a lone high surrogate', { accessToken: 'abc\uD83D' }],
    ['a lone low surrogate', { refreshToken: '\uDE00abc' }],
  ])('rejects %s with INVALID_ARGUMENT', (_, fields) => {
    let thrown: unknown;
    try {
      new OAuthToken(fields as never);
    } catch (error) {
      thrown = error;
    }
    expect(TokenStoreError.is(thrown)).toBe(true);
    expect((thrown as TokenStoreError).code).toBe('INVALID_ARGUMENT');
  });

  test('whole emoji (surrogate pairs) are fine; a lone surrogate in a user name is not', () => {
    expect(new OAuthToken({ accessToken: 'key 🔑 \uD83D\uDD11' }).accessToken).toBe('key 🔑 🔑');
    expect(() => new UserSignature('ana\uDC00')).toThrow(/lone UTF-16 surrogate/);
  });

  test('UserSignature needs a non-empty name', () => {
    expect(() => new UserSignature('')).toThrow(TokenStoreError);
    expect(() => new UserSignature(undefined as unknown as string)).toThrow(/non-empty string/);
  });

  test('isExpired: expired when less than 5 seconds remain (by default) or the expiry is unknown', () => {
    const token = new OAuthToken({ accessToken: ACCESS, expiryTime: 100000 });
    expect(token.isExpired(90000)).toBe(false);
    expect(token.isExpired(95000)).toBe(false);
    expect(token.isExpired(95001)).toBe(true);
    expect(token.isExpired(99000, 0)).toBe(false);
    expect(token.isExpired(100001, 0)).toBe(true);
    expect(new OAuthToken({ accessToken: ACCESS }).isExpired()).toBe(true);
    expect(new OAuthToken({ accessToken: ACCESS, expiryTime: Date.now() + 3600000 }).isExpired()).toBe(false);
  });

  test('util.inspect, toString and JSON.stringify never show a secret whole', () => {
    const token = fullToken();
    for (const shown of [inspect(token), String(token), JSON.stringify(token), inspect({ nested: [token] }, { depth: 5 }), `${token}`]) {
      for (const secret of [SECRET, REFRESH, ACCESS, GRANT]) expect(shown).not.toContain(secret);
      expect(shown).toContain('ana@zylker.com:6000123');
      expect(shown).toContain('…WXYZ');
    }
    const short = new OAuthToken({ accessToken: 'abc' });
    expect(JSON.stringify(short)).not.toContain('abc');
  });

  test('toFields is the explicit way to read every value; clone copies them', () => {
    const token = fullToken();
    expect(token.toFields().clientSecret).toBe(SECRET);
    const copy = token.clone();
    expect(copy).not.toBe(token);
    expect(copy.toFields()).toEqual(token.toFields());
  });

  test('validate catches fields assigned by hand', () => {
    const token = fullToken();
    (token as unknown as Record<string, unknown>).refreshToken = 7;
    expect(() => token.validate()).toThrow(TokenStoreError);
  });

  test('isToken recognises tokens and nothing else', () => {
    expect(OAuthToken.isToken(fullToken())).toBe(true);
    expect(OAuthToken.isToken({ ...fullToken() })).toBe(false);
    expect(OAuthToken.isToken(null)).toBe(false);
  });
});
