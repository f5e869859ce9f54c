/** What the benchmarks share: timing several variants of one operation fairly on a busy machine. */

/** One variant of the operation under measurement; `iteration` lets it pick its input. */
export type Variant = (iteration: number) => Promise<unknown>;

/**
 * Median latency in microseconds of each variant, measured `operations` times after `warmup` runs. The
 * variants take turns, in rotating order, so background noise (other processes, autovacuum) falls on all
 * of them alike.
 */
export async function interleavedMedians<Variants extends Variant[]>(
  variants: [...Variants],
  operations: number,
  warmup: number,
): Promise<{ [Index in keyof Variants]: number }> {
  const samples: number[][] = variants.map(() => []);
  for (let iteration = 0; iteration < warmup + operations; iteration++) {
    for (let turn = 0; turn < variants.length; turn++) {
      const which = (iteration + turn) % variants.length;
      const started = process.hrtime.bigint();
      await (variants[which] as Variant)(iteration);
      if (iteration >= warmup) samples[which]?.push(Number(process.hrtime.bigint() - started) / 1000);
    }
  }
  return samples.map((list) => {
    list.sort((a, b) => a - b);
    return list[Math.floor(list.length / 2)] as number;
  }) as { [Index in keyof Variants]: number };
}
