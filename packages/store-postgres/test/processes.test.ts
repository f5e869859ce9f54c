import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PostgresTokenStore } from '../src/index';
import { dropTable, postgresUrl, randomTable, TEST_SCHEMA } from './conformance-options.js';

const run = promisify(execFile);
const WORKERS = 4;
const USERS_PER_WORKER = 250;
const SHARED_SAVES_PER_WORKER = 50;

test(`${WORKERS} processes × ${USERS_PER_WORKER} users + ${SHARED_SAVES_PER_WORKER} saves each to one shared user give exactly ${
  WORKERS * USERS_PER_WORKER + 1
} tokens`, async () => {
  const url = await postgresUrl();
  const table = randomTable('processes');
  // The workers all start on a table that does not exist yet: creating it must be safe across processes too.
  const results = await Promise.all(
    Array.from({ length: WORKERS }, (_, worker) =>
      run(
        process.execPath,
        [
          '--import',
          'tsx',
          join(__dirname, 'fixtures', 'save-worker.ts'),
          url,
          TEST_SCHEMA,
          table,
          String(worker),
          String(USERS_PER_WORKER),
          String(SHARED_SAVES_PER_WORKER),
        ],
        { cwd: join(__dirname, '..'), timeout: 120000 },
      ),
    ),
  );
  const summaries = results.map((result) => JSON.parse(result.stdout) as { saves: number; failures: string[] });
  expect(summaries.flatMap((summary) => summary.failures)).toEqual([]);
  expect(summaries.reduce((sum, summary) => sum + summary.saves, 0)).toBe(WORKERS * (USERS_PER_WORKER + SHARED_SAVES_PER_WORKER));

  const store = new PostgresTokenStore({ url, schema: TEST_SCHEMA, table });
  try {
    const tokens = await store.getTokens();
    expect(tokens).toHaveLength(WORKERS * USERS_PER_WORKER + 1);
    expect(new Set(tokens.map((token) => token.id)).size).toBe(tokens.length);
    expect(new Set(tokens.map((token) => token.userName)).size).toBe(tokens.length);
    for (const token of tokens) {
      if (token.userName === 'shared@zylker.com:1') {
        expect(token.refreshToken).toBe('shared-refresh');
        expect(token.accessToken).toMatch(/^shared-access-\d-\d+$/);
      } else {
        const [, worker, index] = /^user-(\d)-(\d+)@/.exec(token.userName ?? '') ?? [];
        expect(token.refreshToken).toBe(`refresh-${worker}-${index}`);
        expect(token.accessToken).toBe(`access-${worker}-${index}`);
        expect(token.expiryTime).toBe(1764000000000 + Number(index));
      }
    }
  } finally {
    await store.close();
    await dropTable(url, TEST_SCHEMA, table);
  }
}, 180000);
