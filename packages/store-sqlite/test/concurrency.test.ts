import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SQLiteTokenStore } from '../src/index.js';
import { removeTempFolders, tempFolder } from './helpers.js';
import { startWorker, workerScript } from './processes.js';

afterEach(removeTempFolders);

const WORKERS = 4;
const DISTINCT_USERS = 250;
const SHARED_SAVES = 50;

test('4 processes saving 250 users each and 50 times one shared user end with 1001 tokens and 1001 ids', async () => {
  const filename = join(tempFolder(), 'shared.db');
  new SQLiteTokenStore({ filename }).close(); // the schema exists before the race, as in a deployed app
  const script = workerScript('save-worker.mjs');
  const workers = Array.from({ length: WORKERS }, (_, worker) =>
    startWorker(script, [filename, String(worker), String(DISTINCT_USERS), String(SHARED_SAVES)]),
  );
  await Promise.all(workers.map((worker) => worker.ready));
  for (const worker of workers) worker.start();
  const results = (await Promise.all(workers.map((worker) => worker.result))) as { saved: number; failures: string[] }[];

  for (const result of results) expect(result).toEqual({ saved: DISTINCT_USERS + SHARED_SAVES, failures: [] });
  const store = new SQLiteTokenStore({ filename });
  const tokens = await store.getTokens();
  await store.close();
  expect(tokens).toHaveLength(WORKERS * DISTINCT_USERS + 1);
  expect(new Set(tokens.map((token) => token.id)).size).toBe(WORKERS * DISTINCT_USERS + 1);
  expect(new Set(tokens.map((token) => token.userName)).size).toBe(WORKERS * DISTINCT_USERS + 1);
  // Each process's own users all arrived, each with its own last write.
  for (let worker = 0; worker < WORKERS; worker += 1) {
    const own = tokens.filter((token) => token.userName?.startsWith(`user-${worker}-`));
    expect(own).toHaveLength(DISTINCT_USERS);
    for (const token of own) expect(token.accessToken).toBe(token.userName?.replace(/^user-(\d+-\d+)@example\.com:1$/, 'access-$1'));
  }
  // The shared user holds one of the values written to it, and its access and refresh tokens come from the same save.
  const shared = tokens.find((token) => token.userName === 'shared@example.com:1');
  expect(shared?.accessToken).toMatch(/^access-\d-shared-\d+$/);
  expect(shared?.refreshToken).toBe(`refresh-${shared?.accessToken}`);

  const database = new Database(filename, { readonly: true });
  expect(database.prepare('SELECT COUNT(*) AS tokens, COUNT(DISTINCT id) AS ids FROM oauthtoken').get()).toEqual({
    tokens: 1001,
    ids: 1001,
  });
  database.close();
});
