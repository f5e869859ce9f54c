/**
 * The example store of WRITING-A-STORE.md runs the whole suite here, so the example in the docs stays
 * correct as the suite grows, and the guide's quotes of it stay true to its code.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OAuthToken, TokenStoreError, UserSignature } from '@crm/core';
import { JsonFileTokenStore } from '../../../docs/examples/json-file-store';
import { createConformanceOptions } from '../../../docs/examples/json-file-store.conformance';
import { describeTokenStore } from '../src/jest';

const workspace = join(__dirname, '..', '..', '..');

// The processes group's workers load the TypeScript options module through tsx here, which on a busy
// machine can take most of the default 30 s per case before the first save.
describeTokenStore('JsonFileTokenStore (docs/examples)', { ...createConformanceOptions(), caseTimeoutMs: 60_000 });

test("every block of WRITING-A-STORE.md that quotes the example matches the example's code, line for line", () => {
  const guide = readFileSync(join(workspace, 'packages', 'core', 'docs', 'WRITING-A-STORE.md'), 'utf8');
  const example = ['json-file-store.ts', 'json-file-store.conformance.ts']
    .map((file) => readFileSync(join(workspace, 'docs', 'examples', file), 'utf8'))
    .join('\n');
  const exampleLines = new Set(example.split('\n').map((line) => line.trim()));
  const blocks = [...guide.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => (match[1] as string).split('\n').map((line) => line.trim()));
  // A block whose first line is a line of the example is a quote; `// ...` marks what a quote leaves out.
  const quotes = blocks.filter((lines) => exampleLines.has(lines[0] as string));
  expect(quotes.length).toBeGreaterThanOrEqual(6);
  const untrue = quotes.flatMap((lines) => lines.filter((line) => line !== '' && !line.startsWith('// ...') && !exampleLines.has(line)));
  expect(untrue).toEqual([]);
});

describe("the example store's own behaviour", () => {
  let folder: string;
  let filename: string;
  const token = (name: string) =>
    new OAuthToken({ userSignature: new UserSignature(name), refreshToken: `1000.refresh.${name}`, clientId: 'cid', clientSecret: 'cs' });
  const codeOf = (promise: Promise<unknown>) =>
    promise.then(
      () => 'resolved',
      (error: unknown) => (TokenStoreError.is(error) ? error.code : String(error)),
    );

  beforeEach(() => {
    folder = mkdtempSync(join(tmpdir(), 'crm-json-example-'));
    filename = join(folder, 'tokens.json');
  });
  afterEach(() => rmSync(folder, { recursive: true, force: true }));

  test('the token file is readable by its owner only (0600)', async () => {
    await new JsonFileTokenStore({ filename }).saveToken(token('ana'));
    expect(statSync(filename).mode & 0o777).toBe(0o600);
  });

  test('unknown options and a missing filename are INVALID_ARGUMENT', () => {
    expect(() => new JsonFileTokenStore({ filename, path: 'x' } as never)).toThrow(/unknown option path/);
    expect(() => new JsonFileTokenStore({} as never)).toThrow(/filename must be a non-empty string/);
    expect(() => new JsonFileTokenStore({ filename, operationTimeoutMs: 0 })).toThrow(/operationTimeoutMs/);
  });

  test('a lock left by a process that is gone is broken, and the save goes through', async () => {
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    writeFileSync(`${filename}.lock`, `${gone} left-behind`);
    const store = new JsonFileTokenStore({ filename, operationTimeoutMs: 2000 });
    await store.saveToken(token('ana'));
    expect((await store.getTokens()).map((stored) => stored.userName)).toEqual(['ana']);
  });

  test('a live holder keeps the lock: the save fails with BACKEND_UNAVAILABLE and is never applied later', async () => {
    const store = new JsonFileTokenStore({ filename, operationTimeoutMs: 150 });
    await store.saveToken(token('ana'));
    const before = readFileSync(filename, 'utf8');
    writeFileSync(`${filename}.lock`, `${process.pid} someone-else`); // this process is alive
    expect(await codeOf(store.saveToken(token('bob')))).toBe('BACKEND_UNAVAILABLE');
    expect(readFileSync(`${filename}.lock`, 'utf8')).toBe(`${process.pid} someone-else`); // not taken, not removed
    rmSync(`${filename}.lock`);
    await new Promise((resolve) => setTimeout(resolve, 100)); // a late write would land now
    expect(readFileSync(filename, 'utf8')).toBe(before);
  });

  test('a corrupt file is CORRUPT_DATA for reads and saves, and is never overwritten', async () => {
    const store = new JsonFileTokenStore({ filename });
    for (const content of ['{"tokens": [', '{"tokens": [null]}', '{"tokens": [{"user_name": "no id"}]}', '[]']) {
      writeFileSync(filename, content);
      expect(await codeOf(store.getTokens())).toBe('CORRUPT_DATA');
      expect(await codeOf(store.saveToken(token('ana')))).toBe('CORRUPT_DATA');
      expect(readFileSync(filename, 'utf8')).toBe(content);
    }
  });
});
