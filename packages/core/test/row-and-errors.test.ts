import { OAuthToken, TOKEN_STORE_ERROR_CODES, TokenStoreError, UserSignature } from '../src/index';
import { TOKEN_COLUMNS, tokenFromRow, tokenToRow } from '../src/store-kit';

describe('rows in Zoho columns', () => {
  test('a token and its row map both ways with expiry as decimal text', () => {
    const token = new OAuthToken({
      id: '1',
      userSignature: new UserSignature('ana'),
      refreshToken: 'r',
      clientId: 'c',
      clientSecret: 's',
      expiryTime: 1764000000123,
    });
    const row = tokenToRow(token);
    expect(Object.keys(row)).toEqual([...TOKEN_COLUMNS]);
    expect(row.expiry_time).toBe('1764000000123');
    expect(row.access_token).toBeNull();
    expect(tokenFromRow(row, 'S', 'getTokens').toFields()).toEqual(token.toFields());
  });

  test('empty strings read as null, numbers are accepted for expiry', () => {
    const token = tokenFromRow(
      { id: '2', user_name: '', access_token: 'a', expiry_time: 5 as unknown as string, grant_token: '' },
      'S',
      'getTokens',
    );
    expect(token.userSignature).toBeNull();
    expect(token.grantToken).toBeNull();
    expect(token.expiryTime).toBe(5);
  });

  test.each(['soon', '1.5', '99999999999999999', '1e3'])('an expiry_time of %p is CORRUPT_DATA', (expiry) => {
    expect(() => tokenFromRow({ id: '3', access_token: 'a', expiry_time: expiry }, 'S', 'findTokenById')).toThrow(
      expect.objectContaining({ code: 'CORRUPT_DATA', operation: 'findTokenById' }),
    );
  });
});

describe('TokenStoreError', () => {
  test('carries code, store, operation and cause; the message names the operation only', () => {
    const cause = new Error("duplicate key value: 'secret-value'");
    const error = TokenStoreError.failure({ store: 'PgStore', operation: 'saveToken', cause }, 'the server refused the write');
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('TokenStoreError');
    expect(error.code).toBe('BACKEND_FAILURE');
    expect(error.cause).not.toBe(cause); // a safe copy, never the driver's own object
    expect((error.cause as Error).message).toBe(cause.message);
    expect(error.message).toBe('PgStore.saveToken: the server refused the write');
    expect(error.message).not.toContain('secret-value');
    expect(TokenStoreError.is(error)).toBe(true);
    expect(TokenStoreError.is(new Error('x'))).toBe(false);
  });

  test('the codes are a closed list', () => {
    expect(TOKEN_STORE_ERROR_CODES).toEqual([
      'INVALID_ARGUMENT',
      'INVALID_TOKEN',
      'VALUE_TOO_LONG',
      'CONFLICT',
      'BACKEND_UNAVAILABLE',
      'BACKEND_FAILURE',
      'CORRUPT_DATA',
      'STORE_CLOSED',
      'LOCK_TIMEOUT',
      'LOCK_LOST',
    ]);
    expect(TokenStoreError.valueTooLong({ store: 'S', operation: 'saveToken' }, 'client_secret', 255).message).toContain('client_secret');
  });
});
