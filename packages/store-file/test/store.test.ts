import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { inspect } from 'node:util';
import { threadId } from 'node:worker_threads';
import { OAuthToken, TokenStoreError, UserSignature } from '@crm/core';
import { DEFAULT_FILENAME, FileTokenStore, HEADER_LINE } from '../src/index.js';

let folder: string;
let path: string;
beforeEach(() => {
  folder = mkdtempSync(join(tmpdir(), 'crm-store-file-store-'));
  path = join(folder, 'sdk_tokens.txt');
});
afterEach(() => rmSync(folder, { recursive: true, force: true }));

const user = (name: string, accessToken = `at-${name}`) => new OAuthToken({ userSignature: new UserSignature(name), accessToken });
const byUser = (store: FileTokenStore, name: string) => store.findToken(new OAuthToken({ userSignature: new UserSignature(name) }));

async function errorOf(promise: Promise<unknown>): Promise<TokenStoreError> {
  const error = await promise.then(
    () => null,
    (thrown: unknown) => thrown,
  );
  if (!TokenStoreError.is(error)) throw new Error(`expected a TokenStoreError, got ${String(error)}`);
  return error;
}

/** The pid of a process that has just exited, so no process holds it. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((done) => child.once('exit', done));
  return child.pid as number;
}

describe('options', () => {
  test("the default filename is Zoho's sdk_tokens.txt in the working directory", () => {
    expect(DEFAULT_FILENAME).toBe('sdk_tokens.txt');
    expect(new FileTokenStore().filename).toBe(resolve('sdk_tokens.txt'));
    expect(existsSync(resolve('sdk_tokens.txt'))).toBe(false);
  });

  test.each([
    [{ filename: '' }, 'filename must be'],
    [{ filename: 'a\u0000b' }, 'filename must be'],
    [{ operationTimeoutMs: -1 }, 'operationTimeoutMs must be a whole number'],
    [{ operationTimeoutMs: 0 }, 'operationTimeoutMs must be a whole number'],
    [{ operationTimeoutMs: 1.5 }, 'operationTimeoutMs must be a whole number'],
    [{ operationTimeoutMs: '5' }, 'operationTimeoutMs must be a whole number'],
    [{ staleLockMs: Number.NaN }, 'staleLockMs must be a whole number'],
    [{ path: 'sdk_tokens.txt' }, 'path was renamed to filename'],
    [{ lockTimeoutMs: 1000 }, 'lockTimeoutMs was renamed to operationTimeoutMs'],
    [{ fileName: 'sdk_tokens.txt' }, 'unknown option fileName'],
    [{ constructor: 'x' }, 'unknown option constructor'],
    [null, 'options must be an object'],
  ])('bad options %j are INVALID_ARGUMENT: %s', (options, message) => {
    expect(() => new FileTokenStore(options as never)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', operation: 'open' }));
    expect(() => new FileTokenStore(options as never)).toThrow(message);
  });
});

describe('a missing file', () => {
  test('reads as empty and is created on the first save', async () => {
    const store = new FileTokenStore({ filename: path });
    expect([await store.getTokens(), await byUser(store, 'a'), await store.findTokenById('x')]).toEqual([[], null, null]);
    await store.deleteToken('x');
    expect(existsSync(path)).toBe(false);
    await store.saveToken(user('a@zylker.com'));
    expect(readFileSync(path, 'utf8').split('\n')).toHaveLength(2);
  });

  test('deleteTokens leaves a header-only file, as Zoho does', async () => {
    const store = new FileTokenStore({ filename: path });
    await store.saveToken(user('a@zylker.com'));
    await store.deleteTokens();
    expect(readFileSync(path, 'utf8')).toBe(HEADER_LINE);
  });
});

describe('file system errors are TokenStoreError with the cause kept', () => {
  test('a missing folder: BACKEND_FAILURE on save, nothing created', async () => {
    const store = new FileTokenStore({ filename: join(folder, 'missing', 'sdk_tokens.txt') });
    const error = await errorOf(store.saveToken(user('a@zylker.com')));
    expect([
      error.code,
      error.operation,
      error.message.includes('folder does not exist'),
      (error.cause as NodeJS.ErrnoException).code,
    ]).toEqual(['BACKEND_FAILURE', 'saveToken', true, 'ENOENT']);
    expect(readdirSync(folder)).toEqual([]);
  });

  test('a path through a file: BACKEND_FAILURE on every operation', async () => {
    writeFileSync(join(folder, 'plain-file'), 'x');
    const store = new FileTokenStore({ filename: join(folder, 'plain-file', 'sdk_tokens.txt') });
    for (const call of [store.saveToken(user('a@zylker.com')), store.getTokens(), byUser(store, 'a'), store.deleteTokens()]) {
      expect((await errorOf(call)).code).toBe('BACKEND_FAILURE');
    }
  });

  test('a folder where the file should be: BACKEND_FAILURE', async () => {
    const store = new FileTokenStore({ filename: folder });
    expect((await errorOf(store.getTokens())).code).toBe('BACKEND_FAILURE');
    expect((await errorOf(store.saveToken(user('a@zylker.com')))).code).toBe('BACKEND_FAILURE');
  });
});

describe('the in-memory index follows the file on disk', () => {
  test('an unchanged file (same size, mtime and inode) is not read again', async () => {
    const store = new FileTokenStore({ filename: path });
    await store.saveToken(user('a@zylker.com', 'AAAA'));
    utimesSync(path, 1_700_000_000, 1_700_000_000);
    expect((await byUser(store, 'a@zylker.com'))?.accessToken).toBe('AAAA');
    // Change the bytes in place and put the mtime back: size, mtime and inode are as before.
    const text = readFileSync(path, 'utf8');
    const fd = openSync(path, 'r+');
    writeSync(fd, text.replace('AAAA', 'BBBB'), 0);
    closeSync(fd);
    utimesSync(path, 1_700_000_000, 1_700_000_000);
    expect((await byUser(store, 'a@zylker.com'))?.accessToken).toBe('AAAA');
    // Any change of mtime makes the store read the file again.
    utimesSync(path, 1_700_000_001, 1_700_000_001);
    expect((await byUser(store, 'a@zylker.com'))?.accessToken).toBe('BBBB');
  });

  test('a file replaced by another writer is read again, and a save decides against the new content', async () => {
    const store = new FileTokenStore({ filename: path });
    await store.saveToken(user('a@zylker.com'));
    const other = new FileTokenStore({ filename: path });
    await other.saveToken(user('b@zylker.com'));
    expect((await byUser(store, 'b@zylker.com'))?.id).toBe((await byUser(other, 'b@zylker.com'))?.id);
    // A rewrite in place by another tool (same inode), as Zoho's FileStore does.
    const text = readFileSync(path, 'utf8');
    writeFileSync(path, text.replace('at-b@zylker.com', 'at-b2@zylker.com'));
    expect((await byUser(store, 'b@zylker.com'))?.accessToken).toBe('at-b2@zylker.com');
    await other.saveToken(user('c@zylker.com'));
    await store.saveToken(user('b@zylker.com', 'from-store'));
    expect((await other.getTokens()).map((token) => token.userName).sort()).toEqual(['a@zylker.com', 'b@zylker.com', 'c@zylker.com']);
  });

  test('a file deleted behind the store reads as empty', async () => {
    const store = new FileTokenStore({ filename: path });
    await store.saveToken(user('a@zylker.com'));
    rmSync(path);
    expect(await store.getTokens()).toEqual([]);
  });
});

describe('the lock file', () => {
  const lockPath = () => `${path}.lock`;
  /** This process's PID namespace on this boot, as the lock records it, read here independently of the store. */
  const ourPidSpace = `${readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()}/${readlinkSync('/proc/self/ns/pid')}`;
  const owner = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
  /** Writes a lock as another holder would, last refreshed `ageMs` ago. */
  const writeLock = (holder: object, ageMs = 0) => {
    writeFileSync(lockPath(), JSON.stringify({ owner, hostname: hostname(), createdAt: Date.now() - ageMs, ...holder }));
    const modified = (Date.now() - ageMs) / 1000;
    utimesSync(lockPath(), modified, modified);
  };

  test('a lock whose holder died in this PID namespace is taken over at once, with the temporary file it left', async () => {
    const pid = await deadPid();
    writeLock({ pid, pidSpace: ourPidSpace });
    writeFileSync(`${path}.${owner}.tmp`, 'half a file');
    const store = new FileTokenStore({ filename: path, operationTimeoutMs: 60_000, staleLockMs: 60_000 });
    const started = Date.now();
    await store.saveToken(user('a@zylker.com'));
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(readdirSync(folder)).toEqual(['sdk_tokens.txt']);
  });

  test('a live holder makes a change wait, then fail with BACKEND_UNAVAILABLE; nothing is written', async () => {
    writeFileSync(path, HEADER_LINE);
    writeLock({ pid: process.ppid, pidSpace: ourPidSpace });
    const store = new FileTokenStore({ filename: path, operationTimeoutMs: 300 });
    const error = await errorOf(store.saveToken(user('a@zylker.com')));
    expect([error.code, error.operation]).toEqual(['BACKEND_UNAVAILABLE', 'saveToken']);
    expect(readFileSync(path, 'utf8')).toBe(HEADER_LINE);
    expect(existsSync(lockPath())).toBe(true);
    // Reads do not need the lock.
    expect(await store.getTokens()).toEqual([]);
  });

  test('a change waits for the holder and goes ahead once the lock is released', async () => {
    writeLock({ pid: process.ppid, pidSpace: ourPidSpace });
    const store = new FileTokenStore({ filename: path, operationTimeoutMs: 10_000 });
    const saving = store.saveToken(user('a@zylker.com'));
    setTimeout(() => rmSync(lockPath()), 200);
    await saving;
    expect(await store.getTokens()).toHaveLength(1);
  });

  test('a lock naming this thread (pid, PID namespace, threadId) that this thread does not hold is taken over at once', async () => {
    writeLock({ pid: process.pid, pidSpace: ourPidSpace, threadId });
    const store = new FileTokenStore({ filename: path, operationTimeoutMs: 200, staleLockMs: 60_000 });
    await store.saveToken(user('a@zylker.com'));
    expect(readdirSync(folder)).toEqual(['sdk_tokens.txt']);
  });

  test.each([
    ['this pid in another PID namespace (another container on this host)', { pid: process.pid, pidSpace: `${ourPidSpace}-other` }],
    ['a pid no process here has, from another PID namespace', { pid: 2 ** 22 + 7, pidSpace: `${ourPidSpace}-other` }],
    ['a holder whose PID namespace is unknown', { pid: 1, pidSpace: null }],
    ['another thread of this process (a worker thread)', { pid: process.pid, pidSpace: ourPidSpace, threadId: threadId + 1 }],
    ['this pid in this PID namespace without a thread id', { pid: process.pid, pidSpace: ourPidSpace }],
    ['an older version of this package (pid, host name, no owner id)', { pid: 1, owner: undefined, hostname: 'elsewhere.example' }],
  ])('a lock from %s is taken over only once it was not refreshed for staleLockMs', async (_name, holder) => {
    writeLock(holder, 1_000);
    const patient = new FileTokenStore({ filename: path, operationTimeoutMs: 300, staleLockMs: 60_000 });
    expect((await errorOf(patient.saveToken(user('a@zylker.com')))).code).toBe('BACKEND_UNAVAILABLE');
    const store = new FileTokenStore({ filename: path, operationTimeoutMs: 300, staleLockMs: 500 });
    await store.saveToken(user('a@zylker.com'));
    expect(await store.getTokens()).toHaveLength(1);
    expect(existsSync(lockPath())).toBe(false);
  });

  test('an empty lock file (its creator died before writing it) is taken over after a second', async () => {
    writeFileSync(lockPath(), '');
    const store = new FileTokenStore({ filename: path, operationTimeoutMs: 200 });
    expect((await errorOf(store.saveToken(user('a@zylker.com')))).code).toBe('BACKEND_UNAVAILABLE');
    const old = (Date.now() - 5_000) / 1000;
    utimesSync(lockPath(), old, old);
    await store.saveToken(user('a@zylker.com'));
    expect(await store.getTokens()).toHaveLength(1);
  });

  test('the lock file is removed after every change, also a failed one', async () => {
    const store = new FileTokenStore({ filename: path });
    await store.saveToken(user('a@zylker.com'));
    await expect(
      store.saveToken(
        new OAuthToken({
          id: (await byUser(store, 'a@zylker.com'))?.id,
          userSignature: new UserSignature('b@zylker.com'),
          accessToken: 'x',
        }),
      ),
    ).resolves.toBeUndefined();
    await store.saveToken(user('c@zylker.com'));
    const conflict = await errorOf(
      store.saveToken(
        new OAuthToken({
          id: (await byUser(store, 'c@zylker.com'))?.id,
          userSignature: new UserSignature('b@zylker.com'),
          accessToken: 'y',
        }),
      ),
    );
    expect(conflict.code).toBe('CONFLICT');
    expect(readdirSync(folder)).toEqual(['sdk_tokens.txt']);
  });
});

describe('inside one process', () => {
  test('five parallel saves of new users keep five tokens (Zoho keeps one)', async () => {
    const store = new FileTokenStore({ filename: path });
    await Promise.all(['a', 'b', 'c', 'd', 'e'].map((name) => store.saveToken(user(`${name}@zylker.com`))));
    expect(await new FileTokenStore({ filename: path }).getTokens()).toHaveLength(5);
  });

  test('stores over one file share the queue: parallel saves through ten stores keep every token', async () => {
    const stores = Array.from({ length: 10 }, () => new FileTokenStore({ filename: path }));
    await Promise.all(
      stores.flatMap((store, n) => [store.saveToken(user(`u${n}@zylker.com`)), store.saveToken(user('shared@zylker.com', `v${n}`))]),
    );
    const tokens = await new FileTokenStore({ filename: path }).getTokens();
    expect(tokens).toHaveLength(11);
    await Promise.all(stores.map((store) => store.close()));
  });

  test('close waits for the changes still queued', async () => {
    const store = new FileTokenStore({ filename: path });
    const saves = [store.saveToken(user('a@zylker.com')), store.saveToken(user('b@zylker.com'))];
    await store.close();
    expect(await new FileTokenStore({ filename: path }).getTokens()).toHaveLength(2);
    await Promise.all(saves);
  });
});

test('two copies of this module in one process (ESM and CommonJS builds) share the queue and respect each other’s locks', async () => {
  let copy: typeof import('../src/index.js') | undefined;
  jest.isolateModules(() => {
    copy = require('../src/index.js');
  });
  const OtherFileTokenStore = copy?.FileTokenStore as typeof FileTokenStore;
  expect(OtherFileTokenStore).not.toBe(FileTokenStore);
  const stores = [
    new FileTokenStore({ filename: path, operationTimeoutMs: 30_000 }),
    new OtherFileTokenStore({ filename: path, operationTimeoutMs: 30_000 }),
  ];
  await Promise.all(Array.from({ length: 40 }, (_, n) => (stores[n % 2] as FileTokenStore).saveToken(user(`copy${n}@zylker.com`))));
  expect(await new FileTokenStore({ filename: path }).getTokens()).toHaveLength(40);
});

describe('a token file that is a symbolic link', () => {
  test.each([
    ['to an existing file', true],
    ['that dangles (its target is created by the first save)', false],
  ])(
    'a link %s: the store writes and locks at the target, the link stays a link, both paths see each other',
    async (_name, targetExists) => {
      mkdirSync(join(folder, 'real'));
      const target = join(folder, 'real', 'tokens.csv');
      if (targetExists) writeFileSync(target, HEADER_LINE);
      // A relative link, through a linked folder: the target is resolved from where the link really is.
      symlinkSync('real', join(folder, 'linked-folder'));
      symlinkSync('tokens.csv', join(folder, 'real', 'link.csv'));
      const throughLink = new FileTokenStore({ filename: join(folder, 'linked-folder', 'link.csv') });
      const atTarget = new FileTokenStore({ filename: target });
      expect([throughLink.filename, throughLink.lockFilename]).toEqual([atTarget.filename, atTarget.lockFilename]);

      await throughLink.saveToken(user('a@zylker.com'));
      await atTarget.saveToken(user('b@zylker.com'));
      await throughLink.saveToken(user('b@zylker.com', 'at-b2'));
      expect(lstatSync(join(folder, 'real', 'link.csv')).isSymbolicLink()).toBe(true);
      expect(lstatSync(target).isFile()).toBe(true);
      for (const store of [throughLink, atTarget]) {
        expect((await store.getTokens()).map((token) => `${token.userName} ${token.accessToken}`).sort()).toEqual([
          'a@zylker.com at-a@zylker.com',
          'b@zylker.com at-b2',
        ]);
      }
      expect(readdirSync(join(folder, 'real')).sort()).toEqual(['link.csv', 'tokens.csv']);
    },
  );

  test('a loop of links is INVALID_ARGUMENT', () => {
    symlinkSync('b', join(folder, 'a'));
    symlinkSync('a', join(folder, 'b'));
    expect(() => new FileTokenStore({ filename: join(folder, 'a') })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('close', () => {
  test('every call after close rejects with STORE_CLOSED and touches no file; close twice is fine', async () => {
    const store = new FileTokenStore({ filename: path });
    await store.saveToken(user('a@zylker.com'));
    const before = readFileSync(path);
    await store.close();
    await store.close();
    const token = user('a@zylker.com', 'after-close');
    const calls: Array<[string, Promise<unknown>]> = [
      ['findToken', byUser(store, 'a@zylker.com')],
      ['findTokenById', store.findTokenById('x')],
      ['getTokens', store.getTokens()],
      ['saveToken', store.saveToken(token)],
      ['deleteToken', store.deleteToken('x')],
      ['deleteTokens', store.deleteTokens()],
    ];
    for (const [operation, call] of calls) {
      const error = await errorOf(call);
      expect([error.code, error.operation]).toEqual(['STORE_CLOSED', operation]);
    }
    expect(readFileSync(path).equals(before)).toBe(true);
    expect(readdirSync(folder)).toEqual(['sdk_tokens.txt']);
  });

  test('a process that closes its store after a lock timeout exits by itself: no timer is left behind', async () => {
    // A live lock that is not ours: the worker's save times out on it, then the worker closes its store.
    writeFileSync(`${path}.lock`, JSON.stringify({ owner: 'f'.repeat(32), pid: process.pid, pidSpace: null, hostname: hostname() }));
    const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'workers', 'close.ts'), path], {
      cwd: join(__dirname, '..'),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const code = await new Promise((resolve) => child.once('close', resolve));
    expect({ code, output: output.trim() }).toEqual({ code: 0, output: 'BACKEND_UNAVAILABLE STORE_CLOSED timers: 0' });
  });
});

test('a save that fails in the file system keeps no token value in its error or cause', async () => {
  const store = new FileTokenStore({ filename: path });
  mkdirSync(`${path}.lock`);
  const token = new OAuthToken({
    userSignature: new UserSignature('a@zylker.com'),
    clientId: '1000.CLIENTID',
    clientSecret: 'client-secret-value-1234',
    refreshToken: '1000.0123456789abcdef0123.0123456789abcdef0123',
    accessToken: 'access-token-value-5678',
    grantToken: 'grant-token-value-9012',
  });
  const error = await errorOf(store.saveToken(token));
  expect([error.code, (error.cause as NodeJS.ErrnoException).code]).toEqual(['BACKEND_FAILURE', 'EISDIR']);
  const shown = inspect(error, { depth: Number.POSITIVE_INFINITY, showHidden: true });
  for (const secret of ['client-secret-value-1234', '0123456789abcdef0123', 'access-token-value-5678', 'grant-token-value-9012']) {
    expect(shown).not.toContain(secret);
  }
});
