/**
 * What the three ladders (ladder-mysql.ts, ladder-postgres.ts, ladder-redis.ts) share: their two options,
 * the store's save of a refreshed token for a round, and the interleaved run of their steps printed as one
 * Markdown table.
 */
import { OAuthToken, type TokenStore, UserSignature } from '@crm/core';
import { interleaved } from './measure.js';
import { pickIndex, userName } from './tokens.js';

/** A positive whole number given as `--name N`, else `fallback`. */
export function ladderOption(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  const value = at === -1 ? fallback : Number(process.argv[at + 1]);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`--${name} takes a positive whole number`);
  return value;
}

export interface LadderStep {
  name: string;
  run: (round: number) => Promise<unknown>;
}

/** The refreshed access token and expiry step `step` writes in round `round`: its own, so no write is skipped. */
export function stepValues(round: number, step: number): { accessToken: string; expiryTime: number } {
  return { accessToken: `1000.step${step}.${round}`, expiryTime: 1_900_000_000_000 + round * 16 + step };
}

/** The last step of every ladder: the store's own saveToken of a known user's refreshed token. */
export function storeStep(name: string, store: TokenStore, size: number, step: number): LadderStep {
  return {
    name,
    run: (round) =>
      store.saveToken(new OAuthToken({ userSignature: new UserSignature(userName(pickIndex(round, size))), ...stepValues(round, step) })),
  };
}

/**
 * Runs the steps interleaved (`operations` measured calls each, after a warm-up) and prints one table of
 * medians, p99s and ratios to the first step, the floor; `extraColumn`, measured after that run, adds a
 * column (its name, then a value per step).
 */
export async function runLadder(
  title: string,
  steps: LadderStep[],
  operations: number,
  extraColumn?: () => Promise<[string, string[]]>,
): Promise<void> {
  const timings = await interleaved(
    steps.map((step) => ({ run: step.run, operations })),
    operations,
    Math.min(200, operations),
  );
  const extra = extraColumn ? await extraColumn() : undefined;
  const floor = timings[0]?.median ?? Number.NaN;
  console.log(`${title}, ${operations.toLocaleString('en')} saves per step, interleaved\n`);
  console.log(`| step | median µs | p99 µs | × floor |${extra ? ` ${extra[0]} |` : ''}`);
  console.log(`| --- | ---: | ---: | ---: |${extra ? ' ---: |' : ''}`);
  steps.forEach((step, index) => {
    const timing = timings[index];
    if (timing === undefined) return;
    const cells = [step.name, timing.median.toFixed(0), timing.p99.toFixed(0), (timing.median / floor).toFixed(2)];
    if (extra) cells.push(extra[1][index] ?? '');
    console.log(`| ${cells.join(' | ')} |`);
  });
}
