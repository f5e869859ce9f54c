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

/** One measured operation: the store's median next to two baselines on the same connection. */
export interface ComparisonRow {
  operation: string;
  tokens: number;
  store: number;
  rawSame: number;
  rawPlain: number;
}

/** Prints the rows as a Markdown table with both ratios; `sameLabel` and `plainLabel` name the baselines. */
export function printComparison(title: string, sameLabel: string, plainLabel: string, rows: ComparisonRow[], footnote: string): void {
  const format = (value: number) => value.toFixed(0).padStart(8);
  console.log(`${title}\n`);
  console.log(`| operation | tokens | store | ${sameLabel} | ${plainLabel} | store / same | store / plain |`);
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const row of rows) {
    console.log(
      `| ${row.operation} | ${row.tokens.toLocaleString('en')} | ${format(row.store)} | ${format(row.rawSame)} | ${format(row.rawPlain)} | ${(row.store / row.rawSame).toFixed(2)} | ${(row.store / row.rawPlain).toFixed(2)} |`,
    );
  }
  console.log(`\n${footnote}`);
}
