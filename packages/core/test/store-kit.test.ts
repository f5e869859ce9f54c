import { inspect } from 'node:util';
import { MemoryTokenStore, OAuthToken, TOKEN_STORE_ERROR_CODES, TokenStoreError, UserSignature } from '../src/index';
import {
  booleanOption,
  checkOptionsObject,
  checkSaveArgument,
  checkTokenArgument,
  lookupKey,
  nameOption,
  positiveIntegerOption,
  retrySave,
  safeCause,
  tokenFromRow,
  tokenSecrets,
  tokenToRow,
  tokenToValues,
  urlOption,
  withDeadline,
} from '../src/store-kit';

const STORE = 'TestStore';
const secrets = {
  clientSecret: 'client-secret-9f8e7d6c5b4a',
  accessToken: '1000.0123456789abcdef0123456789abcdef.fedcba9876543210fedcba9876543210',
  refreshToken: 'refresh-value-that-is-secret',
  grantToken: 'grant-value-that-is-secret',
};

function fullyInspected(value: unknown): string {
  return inspect(value, { depth: Infinity, showHidden: true });
}

describe('TokenStoreError never keeps token values in its cause', () => {
  test('command arguments, bound parameters and row details are dropped; secrets leave the message', () => {
    const driverError = Object.assign(new Error(`OOM command not allowed; value ${secrets.refreshToken}`), {
      code: 'OOM',
      command: { name: 'evalsha', args: ['sha', 1, secrets.clientSecret, secrets.accessToken] },
      parameters: [secrets.grantToken],
      detail: `Key (access_token)=(${secrets.accessToken}) already exists.`,
      sql: `INSERT ... '${secrets.clientSecret}'`,
      errno: 42,
    });
    Object.defineProperty(driverError, 'cause', { value: new Error(`inner ${secrets.grantToken}`), enumerable: false });
    const error = TokenStoreError.failure(
      { store: STORE, operation: 'saveToken', cause: driverError, secrets: Object.values(secrets) },
      'the server refused',
    );
    const shown = fullyInspected(error);
    for (const [field, value] of Object.entries(secrets)) expect({ field, found: shown.includes(value) }).toEqual({ field, found: false });
    const cause = error.cause as Error & Record<string, unknown>;
    expect(cause).toBeInstanceOf(Error);
    expect(cause.code).toBe('OOM');
    expect(cause.errno).toBe(42);
    expect(cause.message).toBe('OOM command not allowed; value [redacted]');
    expect(cause.command).toBeUndefined();
    expect(cause.detail).toBeUndefined();
    expect((cause.cause as Error).message).toBe('inner [redacted]');
  });

  test("Zoho-format tokens and MySQL's quoted values are removed even without a list of secrets", () => {
    const cause = safeCause(new Error(`Duplicate entry 'ana@zylker.com' for key 'crm_user_name'; ${secrets.accessToken}`));
    expect(cause.message).toBe("Duplicate entry '[value]' for key 'crm_user_name'; [redacted]");
  });

  test('the stack keeps its frames but not the original message', () => {
    const driverError = new Error(`failed on ${secrets.refreshToken}`);
    const cause = safeCause(driverError, [secrets.refreshToken]);
    expect(cause.stack).toMatch(/^Error: failed on \[redacted\]\n\s+at /);
    expect(cause.stack).not.toContain(secrets.refreshToken);
  });

  test('a non-error cause becomes an Error naming its type only', () => {
    expect(safeCause({ args: [secrets.clientSecret] }).message).toBe('');
    expect(safeCause(42).message).toBe('non-error value (number)');
  });
});

describe('empty strings, NUL and shared signatures', () => {
  test("'' assigned after construction counts as absent: not saveable, and never a lookup value", async () => {
    const token = new OAuthToken({ accessToken: 'x' });
    token.accessToken = '';
    expect(() => checkSaveArgument(token, STORE)).toThrow(expect.objectContaining({ code: 'INVALID_TOKEN' }));
    expect(token.accessToken).toBeNull();
    const store = new MemoryTokenStore();
    await store.saveToken(new OAuthToken({ userSignature: new UserSignature('ana'), refreshToken: 'r', clientId: 'c', clientSecret: 's' }));
    const probe = new OAuthToken({ refreshToken: 'r' });
    probe.refreshToken = null;
    probe.accessToken = '';
    checkTokenArgument(probe, STORE, 'findToken');
    expect(lookupKey(probe)).toBeNull();
    expect(await store.findToken(probe)).toBeNull();
  });

  test('a NUL character is refused like a lone surrogate, in every string field', () => {
    for (const field of ['id', 'clientId', 'clientSecret', 'accessToken', 'refreshToken', 'grantToken', 'redirectUrl', 'apiDomain']) {
      expect(() => new OAuthToken({ [field]: 'a\u0000b' })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
    expect(() => new UserSignature('a\u0000b')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    const token = new OAuthToken({ accessToken: 'x' });
    token.accessToken = 'x\u0000';
    expect(() => checkSaveArgument(token, STORE)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  test('a UserSignature cannot be renamed, so copies that share one share nothing mutable', async () => {
    const store = new MemoryTokenStore();
    const token = new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'a' });
    await store.saveToken(token);
    const [copy] = await store.getTokens();
    expect(() => {
      (copy?.userSignature as { name: string }).name = 'eve';
    }).toThrow(TypeError);
    expect((await store.findTokenById(token.id as string))?.userName).toBe('ana');
  });
});

describe('row mapping', () => {
  test('a row round-trips; tokenToValues follows TOKEN_COLUMNS', () => {
    const token = new OAuthToken({ id: 'id1', userSignature: new UserSignature('ana'), ...secrets, expiryTime: 12, apiDomain: 'd' });
    expect(tokenFromRow(tokenToRow(token), STORE, 'getTokens').toFields()).toEqual(token.toFields());
    expect(tokenToValues(token)).toEqual([
      'id1',
      'ana',
      null,
      secrets.clientSecret,
      secrets.refreshToken,
      secrets.accessToken,
      secrets.grantToken,
      '12',
      null,
      'd',
    ]);
  });

  test('a row without an id, or with a NUL, is CORRUPT_DATA naming no value', () => {
    expect(() => tokenFromRow({ id: '', access_token: 'a' }, STORE, 'getTokens')).toThrow(
      expect.objectContaining({ code: 'CORRUPT_DATA' }),
    );
    let thrown: unknown;
    try {
      tokenFromRow({ id: 'x', access_token: `${secrets.accessToken}\u0000` }, STORE, 'getTokens');
    } catch (error) {
      thrown = error;
    }
    expect(TokenStoreError.is(thrown) && thrown.code).toBe('CORRUPT_DATA');
    expect(fullyInspected(thrown)).not.toContain(secrets.accessToken);
  });

  test('tokenSecrets lists the secret values a token holds', () => {
    expect(tokenSecrets(new OAuthToken({ clientId: 'c', clientSecret: 's1', accessToken: 'a1' }))).toEqual(['s1', 'a1']);
  });
});

describe('closed stores', () => {
  test('every call on a closed memory store rejects with STORE_CLOSED; closing twice is fine', async () => {
    expect(TOKEN_STORE_ERROR_CODES).toContain('STORE_CLOSED');
    const store = new MemoryTokenStore();
    await store.close();
    await store.close();
    const token = new OAuthToken({ accessToken: 'a' });
    for (const call of [
      () => store.findToken(token),
      () => store.saveToken(token),
      () => store.deleteToken('x'),
      () => store.getTokens(),
      () => store.deleteTokens(),
      () => store.findTokenById('x'),
    ]) {
      await expect(call()).rejects.toMatchObject({ code: 'STORE_CLOSED' });
    }
  });
});

describe('plumbing', () => {
  test('withDeadline rejects with BACKEND_UNAVAILABLE at the deadline and aborts the work', async () => {
    let aborted = false;
    const started = Date.now();
    await expect(
      withDeadline({ timeoutMs: 50, store: STORE, operation: 'saveToken', backend: 'TestBackend' }, (signal) => {
        signal.addEventListener('abort', () => {
          aborted = true;
        });
        return new Promise(() => {});
      }),
    ).rejects.toMatchObject({ code: 'BACKEND_UNAVAILABLE', message: 'TestStore.saveToken: TestBackend did not answer within 50 ms' });
    expect(aborted).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    await expect(withDeadline({ timeoutMs: 1000, store: STORE, operation: 'getTokens', backend: 'B' }, async () => 7)).resolves.toBe(7);
  });

  test('retrySave runs again only for errors it is told to retry, at most maxAttempts times', async () => {
    let runs = 0;
    const retryable = new Error('deadlock');
    await expect(
      retrySave({ maxAttempts: 3, shouldRetry: (error) => error === retryable }, async () => {
        runs++;
        throw retryable;
      }),
    ).rejects.toBe(retryable);
    expect(runs).toBe(3);
    runs = 0;
    await expect(
      retrySave({ maxAttempts: 3, shouldRetry: () => false }, async () => {
        runs++;
        throw new Error('other');
      }),
    ).rejects.toThrow('other');
    expect(runs).toBe(1);
    expect(
      await retrySave({ maxAttempts: 3, shouldRetry: () => true }, async (attempt) =>
        attempt < 2 ? Promise.reject(new Error('x')) : attempt,
      ),
    ).toBe(2);
  });

  test('option checks agree for every store and never echo a URL', () => {
    expect(() => checkOptionsObject(null, STORE)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(positiveIntegerOption(undefined, 'operationTimeoutMs', 5000, STORE)).toBe(5000);
    for (const bad of [0, -1, 1.5, '10', Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => positiveIntegerOption(bad, 'operationTimeoutMs', 5000, STORE)).toThrow(
        'operationTimeoutMs must be a whole number of at least 1',
      );
    }
    expect(() => booleanOption('yes', 'createSchema', true, STORE)).toThrow('createSchema must be true or false');
    expect(nameOption(undefined, 'table', 'oauthtoken', /^[a-z]+$/, 'lower-case letters', STORE)).toBe('oauthtoken');
    expect(() => nameOption('a;b', 'table', 'oauthtoken', /^[a-z]+$/, 'lower-case letters', STORE)).toThrow(
      'table must be lower-case letters',
    );
    expect(urlOption('postgres://u:p@h/db', 'url', ['postgres:', 'postgresql:'], STORE).hostname).toBe('h');
    let thrown: unknown;
    try {
      urlOption('mysql://root:hunter2-password@h/db', 'url', ['postgres:'], STORE);
    } catch (error) {
      thrown = error;
    }
    expect(fullyInspected(thrown)).not.toContain('hunter2');
  });
});
