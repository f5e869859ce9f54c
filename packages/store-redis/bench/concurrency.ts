/**
 * The concurrency target of the server stores: 20 rounds of 4 processes, each with 16 saves in flight (new
 * users, and every 8th save to one user all processes share), on the standalone server and on the cluster.
 * Prints each round's figures and the totals; exits 1 when any round had an error, a duplicate or a loss.
 * Run with `pnpm bench:concurrency [rounds] [saves per process] [standalone,cluster]` (defaults 20, 400, both).
 */
import { fileURLToPath } from 'node:url';
import type { RedisTokenStore } from '../src/index.js';
import { createConformanceOptions } from '../test/conformance-options.js';
import { type RoundFigures, saveRound } from '../test/workers/save-round.js';

const rounds = Number(process.argv[2] ?? 20);
const savesPerProcess = Number(process.argv[3] ?? 400);
const targets = (process.argv[4] ?? 'standalone,cluster').split(',') as ('standalone' | 'cluster')[];
const round = {
  workerPath: fileURLToPath(new URL('../test/workers/save-worker.ts', import.meta.url)),
  cwd: fileURLToPath(new URL('..', import.meta.url)),
  processes: 4,
  savesPerProcess,
  inFlight: 16,
  sharedEvery: 8,
};

let failed = false;
for (const target of targets) {
  const options = createConformanceOptions(target);
  const totals = {
    saves: 0,
    errors: 0,
    duplicateUserNames: 0,
    duplicateIds: 0,
    lostTokens: 0,
    extraTokens: 0,
    sharedWrong: 0,
    ms: 0,
    saveMs: 0,
  };
  for (let n = 1; n <= rounds; n++) {
    const store = (await options.create()) as RedisTokenStore;
    let figures: RoundFigures;
    try {
      figures = await saveRound(round, store, await options.share?.(store));
    } finally {
      await store.close();
      await options.destroy?.(store);
    }
    totals.saves += figures.saves;
    totals.errors += figures.errors.length;
    totals.duplicateUserNames += figures.duplicateUserNames;
    totals.duplicateIds += figures.duplicateIds;
    totals.lostTokens += figures.lostTokens;
    totals.extraTokens += figures.extraTokens;
    totals.sharedWrong += figures.sharedWrong ? 1 : 0;
    totals.ms += figures.ms;
    totals.saveMs += figures.saveMs;
    console.log(`${target} round ${n}: ${JSON.stringify({ ...figures, errors: figures.errors.length })}`);
  }
  console.log(
    `${target} total over ${rounds} rounds: ${JSON.stringify(totals)} (${Math.round((totals.saves / totals.saveMs) * 1000)} saves/s while saving)`,
  );
  failed ||=
    totals.errors + totals.duplicateUserNames + totals.duplicateIds + totals.lostTokens + totals.extraTokens + totals.sharedWrong > 0;
}
process.exit(failed ? 1 : 0);
