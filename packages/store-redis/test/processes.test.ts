import { join } from 'node:path';
import type { RedisTokenStore } from '../src/index.js';
import { createConformanceOptions } from './conformance-options.js';
import { type RoundFigures, saveRound } from './workers/save-round.js';

// The target is 20 rounds of 4 processes × 16 saves in flight (bench/concurrency.ts runs it); the
// suite runs one smaller round per backend.
const ROUND = {
  workerPath: join(__dirname, 'workers', 'save-worker.ts'),
  cwd: join(__dirname, '..'),
  processes: 4,
  savesPerProcess: 160,
  inFlight: 16,
  sharedEvery: 8,
};

const clean: Partial<RoundFigures> = {
  errors: [],
  duplicateUserNames: 0,
  duplicateIds: 0,
  lostTokens: 0,
  extraTokens: 0,
  sharedWrong: false,
};

describe.each(['standalone', 'cluster'] as const)('4 processes × 16 saves in flight, new users and one shared user (%s)', (target) => {
  test('no errors, no user stored twice, no token lost, the index agrees with the hashes', async () => {
    const options = createConformanceOptions(target);
    const store = (await options.create()) as RedisTokenStore;
    try {
      const figures = await saveRound(ROUND, store, await options.share?.(store));
      expect(figures).toMatchObject(clean);
    } finally {
      await store.close();
      await options.destroy?.(store);
    }
  });
});
