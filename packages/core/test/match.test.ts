import { OAuthToken, TokenStoreError, UserSignature } from '../src/index';
import {
  checkIdArgument,
  checkSaveArgument,
  fillAbsentFields,
  lookupKey,
  mergeForSave,
  newTokenId,
  planSave,
  TOKEN_ID_LENGTH,
  type TokenLookup,
} from '../src/store-kit';

const user = new UserSignature('ana@zylker.com');

describe('lookupKey: the findToken rules', () => {
  test.each([
    [
      '1: user name wins over everything',
      { userSignature: user, accessToken: 'a', refreshToken: 'r', clientId: 'c', clientSecret: 's' },
      { field: 'userName', value: 'ana@zylker.com' },
    ],
    ['2: access token without client credentials', { accessToken: 'a', refreshToken: 'r' }, { field: 'accessToken', value: 'a' }],
    ['2 does not apply with a client id', { accessToken: 'a', clientId: 'c' }, null],
    ['2 does not apply with a client secret', { accessToken: 'a', clientSecret: 's' }, null],
    [
      '3: grant before refresh',
      { grantToken: 'g', refreshToken: 'r', clientId: 'c', clientSecret: 's' },
      { field: 'grantToken', value: 'g' },
    ],
    ['3: refresh token', { refreshToken: 'r', clientId: 'c', clientSecret: 's', accessToken: 'a' }, { field: 'refreshToken', value: 'r' }],
    ['3 needs both credentials (not the Node SDK bracket bug)', { refreshToken: 'r' }, null],
    ['3 needs the client secret', { refreshToken: 'r', clientId: 'c' }, null],
    ['4: nothing identifies', { clientId: 'c', clientSecret: 's', expiryTime: 5 }, null],
    ['4: an id is not a find rule', { id: '7' }, null],
  ])('rule %s', (_, fields, expected) => {
    expect(lookupKey(new OAuthToken(fields as never))).toEqual(expected);
  });
});

describe('merging', () => {
  test('fillAbsentFields keeps the target and fills its nulls, id included', () => {
    const target = new OAuthToken({ userSignature: user, accessToken: 'mine' });
    const stored = new OAuthToken({ id: 'X1', userSignature: user, accessToken: 'stored', refreshToken: 'r', expiryTime: 9 });
    expect(fillAbsentFields(target, stored)).toBe(target);
    expect(target.toFields()).toMatchObject({ id: 'X1', accessToken: 'mine', refreshToken: 'r', expiryTime: 9 });
  });

  test('mergeForSave takes present fields, keeps stored ones and the stored id', () => {
    const stored = new OAuthToken({ id: 'X1', userSignature: user, accessToken: 'old', refreshToken: 'r' });
    const merged = mergeForSave(stored, new OAuthToken({ id: 'other', accessToken: 'new' }));
    expect(merged.toFields()).toMatchObject({ id: 'X1', accessToken: 'new', refreshToken: 'r' });
    expect(merged.userSignature?.name).toBe('ana@zylker.com');
    expect(stored.accessToken).toBe('old');
  });
});

describe('newTokenId', () => {
  test('10 base-62 characters, no collisions in 100,000', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 100000; i++) {
      const id = newTokenId();
      expect(id).toMatch(/^[A-Za-z0-9]{10}$/);
      ids.add(id);
    }
    expect(ids.size).toBe(100000);
    expect(TOKEN_ID_LENGTH).toBe(10);
  });

  test('every one of the 62 characters equally likely (within 5% over a million characters)', () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 100000; i++) {
      for (const character of newTokenId()) counts.set(character, (counts.get(character) ?? 0) + 1);
    }
    expect(counts.size).toBe(62);
    const expected = 1_000_000 / 62;
    for (const [character, count] of counts) {
      expect({ character, off: Math.abs(count - expected) / expected < 0.05 }).toEqual({ character, off: true });
    }
  });
});

describe('planSave', () => {
  function lookupOf(tokens: OAuthToken[]): TokenLookup {
    return {
      findById: (id) => tokens.find((token) => token.id === id) ?? null,
      findByKey: (key) => tokens.find((token) => (key.field === 'userName' ? token.userName : token[key.field]) === key.value) ?? null,
    };
  }

  test('inserts with a new id and changes nothing it was given', () => {
    const token = new OAuthToken({ userSignature: user, accessToken: 'a' });
    const plan = planSave(lookupOf([]), token, 'Test');
    expect(plan.replaces).toBeNull();
    expect(plan.stored.id).toMatch(/^[A-Za-z0-9]{10}$/);
    expect(token.id).toBeNull();
  });

  test('updates by id before the rules, and by the rules when the id is unknown', () => {
    const ana = new OAuthToken({ id: 'A', userSignature: user, accessToken: 'a' });
    const ben = new OAuthToken({ id: 'B', accessToken: 'b' });
    expect(planSave(lookupOf([ana, ben]), new OAuthToken({ id: 'B', accessToken: 'a' }), 'Test').replaces).toBe(ben);
    expect(planSave(lookupOf([ana, ben]), new OAuthToken({ id: 'Z', accessToken: 'a' }), 'Test').stored.id).toBe('A');
  });

  test('a rename onto a taken user name is CONFLICT', () => {
    const ana = new OAuthToken({ id: 'A', userSignature: user, accessToken: 'a' });
    const ben = new OAuthToken({ id: 'B', userSignature: new UserSignature('ben'), accessToken: 'b' });
    expect(() => planSave(lookupOf([ana, ben]), new OAuthToken({ id: 'B', userSignature: user, accessToken: 'b' }), 'Test')).toThrow(
      expect.objectContaining({ code: 'CONFLICT', store: 'Test', operation: 'saveToken' }),
    );
  });
});

describe('argument checks', () => {
  test('checkSaveArgument: INVALID_ARGUMENT for non-tokens, INVALID_TOKEN without any token', () => {
    expect(() => checkSaveArgument({ accessToken: 'a' }, 'S')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => checkSaveArgument(new OAuthToken({ clientId: 'c', clientSecret: 'secret-value' }), 'S')).toThrow(
      expect.objectContaining({ code: 'INVALID_TOKEN', message: expect.not.stringContaining('secret-value') }),
    );
    expect(() => checkSaveArgument(new OAuthToken({ grantToken: 'g' }), 'S')).not.toThrow();
  });

  test('checkIdArgument: non-empty strings only', () => {
    for (const id of ['', 1, null, undefined, {}]) {
      expect(() => checkIdArgument(id, 'S', 'deleteToken')).toThrow(TokenStoreError);
    }
    expect(() => checkIdArgument('1', 'S', 'deleteToken')).not.toThrow();
  });
});
