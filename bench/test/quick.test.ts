/**
 * The bench works: a --quick --strict run against the real servers prints a row for every backend, size and
 * operation with a positive median and p99 for every contender, and writes a results file that parses.
 * Figures are never checked: they depend on the machine.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BACKENDS = ['SQLite', 'file', 'PostgreSQL', 'MySQL', 'Redis'];
const OPERATIONS = ['findToken (user name)', 'findTokenById', 'saveToken (update)', 'saveToken (insert)'];
const SIZES = ['100', '1,000'];
/** Zoho's TypeScript SDK has a file store and a MySQL store only. */
const WITH_ZOHO = new Set(['file', 'MySQL']);

let folder: string;
let run: { status: number | null; stdout: string; stderr: string };

beforeAll(() => {
  folder = mkdtempSync(join(tmpdir(), 'crm-bench-test-'));
  const result = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'src/main.ts', '--quick', '--strict', '--out', join(folder, 'results.json')],
    {
      cwd: join(__dirname, '..'),
      encoding: 'utf8',
      timeout: 280_000,
    },
  );
  run = { status: result.status, stdout: result.stdout, stderr: result.stderr };
});

afterAll(() => rmSync(folder, { recursive: true, force: true }));

/** A "median / p99" cell's two numbers, or null for a dash or anything else. */
function timings(cell: string): [number, number] | null {
  const match = /^([\d,.]+) \/ ([\d,.]+)(?: \(n=\d+\))?$/.exec(cell.trim());
  return match ? [Number((match[1] as string).replaceAll(',', '')), Number((match[2] as string).replaceAll(',', ''))] : null;
}

test('the quick run ends without error', () => {
  if (run.status !== 0) console.error(run.stderr);
  expect(run.stderr).not.toMatch(/missing \(/);
  expect(run.status).toBe(0);
});

test('the table has every backend, size and operation, each contender with a positive median and p99', () => {
  const rows = run.stdout
    .split('\n')
    .filter((line) => line.startsWith('| ') && !line.startsWith('| backend') && !line.startsWith('| ---'))
    .map((line) =>
      line
        .split('|')
        .slice(1, -1)
        .map((cell) => cell.trim()),
    );
  expect(rows).toHaveLength(BACKENDS.length * SIZES.length * OPERATIONS.length);
  for (const backend of BACKENDS) {
    for (const size of SIZES) {
      for (const operation of OPERATIONS) {
        const row = rows.find(([name, tokens, op]) => name === backend && tokens === size && op === operation);
        expect(row).toBeDefined();
        const [, , , ours, floor, keyv, zoho, oursFloor, oursKeyv] = row as string[];
        for (const cell of WITH_ZOHO.has(backend) ? [ours, floor, keyv, zoho] : [ours, floor, keyv]) {
          const figures = timings(cell as string);
          expect({ backend, size, operation, cell, figures }).toEqual(expect.objectContaining({ figures: expect.any(Array) }));
          for (const figure of figures as [number, number]) expect(figure).toBeGreaterThan(0);
        }
        if (!WITH_ZOHO.has(backend)) expect(zoho).toBe('—');
        expect(oursFloor).toMatch(/^\d+\.\d\d×$/);
        expect(oursKeyv).toMatch(/^\d+\.\d\d×$/);
      }
    }
  }
});

test('results.json parses and holds every cell with its median, p99 and count', () => {
  const results = JSON.parse(readFileSync(join(folder, 'results.json'), 'utf8'));
  expect(results.mode).toBe('quick');
  expect(results.node).toBe(process.version);
  expect(Object.keys(results.servers).sort()).toEqual([...BACKENDS].sort());
  expect(results.missing).toEqual([]);
  const contenders = BACKENDS.reduce((sum, backend) => sum + (WITH_ZOHO.has(backend) ? 4 : 3), 0);
  expect(results.cells).toHaveLength(contenders * SIZES.length * OPERATIONS.length);
  for (const cell of results.cells) {
    expect(cell.median).toBeGreaterThan(0);
    expect(cell.p99).toBeGreaterThanOrEqual(cell.median);
    expect(cell.n).toBeGreaterThan(0);
  }
});
