/**
 * Timing several contenders of one operation fairly on a busy machine: they take turns, in an order shuffled
 * every round, so a noisy neighbour, a checkpoint or autovacuum falls on all of them alike, and no contender
 * always runs right after the same other one (a rotation keeps one cycle: the contender after a slow one that
 * leaves caches cold or the disk busy would pay for it in every round). A slow contender may take part in
 * fewer rounds, spread evenly.
 */

/** One call of the operation; `round` picks the input, the same for every contender of that round. */
export type Operation = (round: number) => Promise<unknown>;

export interface Entrant {
  run: Operation;
  /** Measured calls; fewer than the rounds means every k-th round. */
  operations: number;
}

export interface Timing {
  /** Microseconds. */
  median: number;
  /** Microseconds: the 99th percentile (nearest rank). */
  p99: number;
  /** Calls measured. */
  n: number;
}

/** Nearest-rank percentile of sorted samples. */
function percentile(sorted: number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil(fraction * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))] as number;
}

/** A fixed pseudo-random order of `count` entrants for round `round` (Fisher-Yates on mulberry32), the same every run. */
export function roundOrder(count: number, round: number): number[] {
  let state = (Math.imul(round, 0x9e3779b1) ^ 0x5bd1e995) >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const order = Array.from({ length: count }, (_, index) => index);
  for (let index = count - 1; index > 0; index--) {
    const other = Math.floor(next() * (index + 1));
    [order[index], order[other]] = [order[other] as number, order[index] as number];
  }
  return order;
}

/**
 * Runs `rounds` measured rounds after `warmup` unmeasured ones. Each round, every entrant whose turn it is
 * runs once, in the round's shuffled order.
 */
export async function interleaved(entrants: Entrant[], rounds: number, warmup: number): Promise<Timing[]> {
  const strides = entrants.map((entrant) => Math.max(1, Math.ceil(rounds / Math.max(1, entrant.operations))));
  const warmups = entrants.map((entrant) => Math.min(warmup, Math.ceil(entrant.operations / 10)));
  const samples: number[][] = entrants.map(() => []);
  for (let round = -warmup; round < rounds; round++) {
    for (const which of roundOrder(entrants.length, round)) {
      const entrant = entrants[which] as Entrant;
      const list = samples[which] as number[];
      if (round < 0) {
        if (-round > (warmups[which] as number)) continue;
      } else if (round % (strides[which] as number) !== 0 || list.length >= entrant.operations) {
        continue;
      }
      // Warm-up rounds use inputs of their own (negative rounds count from the end of the input space).
      const input = round < 0 ? rounds + warmup + round : round;
      const started = process.hrtime.bigint();
      await entrant.run(input);
      const elapsed = Number(process.hrtime.bigint() - started) / 1000;
      if (round >= 0) list.push(elapsed);
    }
  }
  return samples.map((list) => {
    list.sort((a, b) => a - b);
    return { median: percentile(list, 0.5), p99: percentile(list, 0.99), n: list.length };
  });
}
