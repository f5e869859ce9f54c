/** The Markdown table: one row per backend, size and operation; one column per contender, then the ratios. */
import type { ContenderKind, OperationName } from './backend.js';
import type { Timing } from './measure.js';

export interface Cell extends Timing {
  backend: string;
  size: number;
  operation: OperationName;
  contender: ContenderKind;
}

const COLUMNS: Array<[ContenderKind, string]> = [
  ['ours', 'ours'],
  ['floor', 'floor'],
  ['keyv', 'Keyv'],
  ['zoho', 'Zoho'],
];

/** µs with three significant figures at most: 8.42, 84.2, 842, 8,420. */
export function formatMicros(value: number): string {
  if (!Number.isFinite(value)) return '?';
  if (value < 10) return value.toFixed(2);
  if (value < 100) return value.toFixed(1);
  return Math.round(value).toLocaleString('en');
}

const ratio = (top: Cell | undefined, bottom: Cell | undefined) =>
  top === undefined || bottom === undefined ? '—' : `${(top.median / bottom.median).toFixed(2)}×`;

export function formatTable(title: string, cells: Cell[], operations: number): string {
  const lines = [
    title,
    '',
    `| backend | tokens | operation | ${COLUMNS.map(([, name]) => `${name} median / p99`).join(' | ')} | ours / floor | ours / Keyv |`,
    `| --- | ---: | --- | ${COLUMNS.map(() => '---:').join(' | ')} | ---: | ---: |`,
  ];
  const rows = new Map<string, Cell[]>();
  for (const cell of cells) {
    const key = `${cell.backend}\u0000${cell.size}\u0000${cell.operation}`;
    rows.set(key, [...(rows.get(key) ?? []), cell]);
  }
  for (const row of rows.values()) {
    const first = row[0] as Cell;
    const of = (kind: ContenderKind) => row.find((cell) => cell.contender === kind);
    const columns = COLUMNS.map(([kind]) => {
      const cell = of(kind);
      if (cell === undefined) return '—';
      return `${formatMicros(cell.median)} / ${formatMicros(cell.p99)}${cell.n < operations ? ` (n=${cell.n})` : ''}`;
    });
    lines.push(
      `| ${first.backend} | ${first.size.toLocaleString('en')} | ${first.operation} | ${columns.join(' | ')} | ${ratio(of('ours'), of('floor'))} | ${ratio(of('ours'), of('keyv'))} |`,
    );
  }
  return lines.join('\n');
}
