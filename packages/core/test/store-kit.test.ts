import { inspect } from 'node:util';
import { MemoryTokenStore, OAuthToken, TOKEN_STORE_ERROR_CODES, TokenStoreError, UserSignature } from '../src/index';
import {
  booleanOption,
  checkOptionNames,
  checkOptionsObject,
  checkSaveArgument,
  checkTokenArgument,
  lookupKey,
  maxSaveAttemptsOption,
  nameOption,
  operationTimeoutOption,
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

  test('a secret percent-encoded in a URL or a form body (as an HTTP client may quote it) is removed too', () => {
    const secret = 'Zx9/QwErTy+uIoP=aSdF Hj'; // a client secret of a private deployment, not hex
    const body = new URLSearchParams({ client_secret: secret }).toString();
    const cause = safeCause(new Error(`fetch failed: POST body=${body}; url=?s=${encodeURIComponent(secret)}`), [secret]);
    expect(cause.message).toBe('fetch failed: POST body=client_secret=[redacted]; url=?s=[redacted]');
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
        'operationTimeoutMs must be a whole number from 1 to 2147483647',
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

describe('what an outside review of the kit found', () => {
  test('a driver error whose getters throw still gives a TokenStoreError with a harmless cause', () => {
    const hostile = new Proxy(new Error('x'), {
      get(target, property) {
        if (property === 'message') throw new Error(`getter failed on ${secrets.refreshToken}`);
        return Reflect.get(target, property);
      },
    });
    const error = TokenStoreError.failure({ store: STORE, operation: 'saveToken', cause: hostile }, 'failed');
    expect((error.cause as Error).message).toBe('the driver error could not be copied safely');
  });

  test('names, cut-short, overlapping, escaped and short secrets are all removed', () => {
    const named = Object.assign(new Error('m'), { name: secrets.refreshToken });
    expect(fullyInspected(safeCause(named, []))).not.toContain(secrets.refreshToken);
    const cut = safeCause(new Error(`near '${secrets.accessToken.slice(0, 45)}' at line 1`), [secrets.accessToken]);
    expect(cut.message).toBe("near '[redacted]' at line 1");
    const overlapping = safeCause(new Error('ERR AAAAAAAABBBBBBBB'), ['AAAAAAAABBBB', 'AAAABBBBBBBB']);
    expect(overlapping.message).toBe('ERR [redacted]');
    const escaped = safeCause(new Error("near 'ab\\'cd\\\\efgh'"), ["ab'cd\\efgh"]);
    expect(escaped.message).toBe("near '[redacted]'");
    expect(safeCause(new Error('value x9Q refused'), ['x9Q']).message).toBe('[message removed: it may hold a value]');
  });

  test('a look-alike UserSignature is rebuilt and checked; a token cannot bring an unchecked one into a store', async () => {
    const forged = Object.create(UserSignature.prototype, { name: { value: 'alice\u0000', writable: true } });
    expect(() => new OAuthToken({ userSignature: forged, accessToken: 'a' })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    const store = new MemoryTokenStore();
    const plain = { name: 'ana' };
    const token = new OAuthToken({ userSignature: new UserSignature('ana'), accessToken: 'a' });
    (token as unknown as { userSignature: unknown }).userSignature = plain;
    await store.saveToken(token);
    plain.name = 'bob';
    expect((await store.getTokens()).map((stored) => stored.userName)).toEqual(['ana']);
  });

  test('ids with NUL or a lone surrogate are INVALID_ARGUMENT', async () => {
    const store = new MemoryTokenStore();
    for (const id of ['\u0000', 'a\u0000b', '\uD800']) {
      await expect(store.findTokenById(id)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(store.deleteToken(id)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
  });

  test('withDeadline settles a synchronous throw without a stray timer; timeouts past Node timers are refused', async () => {
    await expect(
      withDeadline({ timeoutMs: 50, store: STORE, operation: 'saveToken', backend: 'B' }, () => {
        throw new Error('bad input');
      }),
    ).rejects.toThrow('bad input');
    await expect(
      withDeadline({ timeoutMs: 3_000_000_000, store: STORE, operation: 'saveToken', backend: 'B' }, async () => 1),
    ).rejects.toThrow(RangeError);
    expect(() => positiveIntegerOption(3_000_000_000, 'operationTimeoutMs', 5000, STORE)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });

  test('retrySave never starts another run once the deadline has aborted', async () => {
    const controller = new AbortController();
    let runs = 0;
    await expect(
      retrySave(
        {
          maxAttempts: 5,
          shouldRetry: () => true,
          signal: controller.signal,
          beforeRetry: () => {
            controller.abort(new Error('deadline'));
          },
        },
        async () => {
          runs++;
          throw new Error('deadlock');
        },
      ),
    ).rejects.toThrow('deadline');
    expect(runs).toBe(1);
    await expect(retrySave({ maxAttempts: Number.NaN, shouldRetry: () => true }, async () => 1)).rejects.toThrow(RangeError);
  });

  test('nameOption matches the whole value whatever the pattern', () => {
    expect(() => nameOption('tokens; DROP TABLE x', 'table', 't', /[a-z]+/g, 'letters', STORE)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    expect(nameOption('tokens', 'table', 't', /[a-z]+/g, 'letters', STORE)).toBe('tokens');
    expect(nameOption('tokens', 'table', 't', /[a-z]+/g, 'letters', STORE)).toBe('tokens');
  });
});

describe('option names and odd rows', () => {
  test('checkOptionNames refuses renamed and unknown names, own keys only', () => {
    const known = ['url', 'table'];
    expect(() => checkOptionNames({ url: 'x', table: 't' }, known, STORE, { connectionString: 'url' })).not.toThrow();
    expect(() => checkOptionNames({ connectionString: 'x' }, known, STORE, { connectionString: 'url' })).toThrow(
      'TestStore.open: connectionString was renamed to url',
    );
    expect(() => checkOptionNames({ connectionLimit: 1 }, known, STORE, { connectionLimit: 'moved into the url' })).toThrow(
      'connectionLimit: moved into the url',
    );
    expect(() => checkOptionNames({ constructor: 1 }, known, STORE)).toThrow('unknown option constructor; the options are url, table');
  });

  test('tokenFromRow of something that is not a row is CORRUPT_DATA', () => {
    expect(() => tokenFromRow(null as never, STORE, 'getTokens')).toThrow(expect.objectContaining({ code: 'CORRUPT_DATA' }));
  });
});

test('operationTimeoutOption and maxSaveAttemptsOption: the defaults and bounds every store shares', () => {
  expect(operationTimeoutOption(undefined, STORE)).toBe(5000);
  expect(operationTimeoutOption(250, STORE)).toBe(250);
  expect(() => operationTimeoutOption(0, STORE)).toThrow('operationTimeoutMs must be a whole number from 1 to 2147483647');
  expect(maxSaveAttemptsOption(undefined, STORE)).toBe(5);
  expect(() => maxSaveAttemptsOption(1001, STORE)).toThrow('maxSaveAttempts must be a whole number from 1 to 1000');
});

test('the text of an error a trigger or routine raised is dropped whole: it may quote stored values nobody passed in', () => {
  for (const fields of [{ code: 'P0001' }, { code: 'ER_SIGNAL_EXCEPTION', sqlState: '45000' }, { code: 'SQLITE_CONSTRAINT_TRIGGER' }]) {
    const cause = safeCause(Object.assign(new Error('refused: storedClientSecretValueZZZZ'), fields), []);
    expect(cause.message).toBe('[message removed: raised by a trigger or routine on the server, it may quote row values]');
    expect(fullyInspected(cause)).not.toContain('storedClientSecretValueZZZZ');
    expect((cause as Error & { code?: string }).code).toBe(fields.code);
  }
});

test('retrySave leaves no abort listener behind on its signal, however many retries', async () => {
  const controller = new AbortController();
  const warnings: string[] = [];
  const onWarning = (warning: Error) => warnings.push(warning.name);
  process.on('warning', onWarning);
  try {
    let runs = 0;
    await expect(
      retrySave({ maxAttempts: 30, shouldRetry: () => true, signal: controller.signal }, async () => {
        runs++;
        throw new Error('deadlock');
      }),
    ).rejects.toThrow('deadlock');
    expect(runs).toBe(30);
    await new Promise((resolve) => setImmediate(resolve));
    expect(warnings).not.toContain('MaxListenersExceededWarning');
  } finally {
    process.off('warning', onWarning);
  }
});
