/**
 * The example store of WRITING-A-STORE.md runs the whole suite here, so the example in the docs stays
 * correct as the suite grows, and the guide's quotes of it stay true to its code.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createConformanceOptions } from '../../../docs/examples/json-file-store.conformance';
import { describeTokenStore } from '../src/jest';

const workspace = join(__dirname, '..', '..', '..');

// The processes group's workers load the TypeScript options module through tsx here, which on a busy
// machine can take most of the default 30 s per case before the first save.
describeTokenStore('JsonFileTokenStore (docs/examples)', { ...createConformanceOptions(), caseTimeoutMs: 60_000 });

test("every block of WRITING-A-STORE.md that quotes the example matches the example's code, line for line", () => {
  const guide = readFileSync(join(workspace, 'packages', 'core', 'docs', 'WRITING-A-STORE.md'), 'utf8');
  const example = ['json-file-store.ts', 'json-file-store.conformance.ts']
    .map((file) => readFileSync(join(workspace, 'docs', 'examples', file), 'utf8'))
    .join('\n');
  const exampleLines = new Set(example.split('\n').map((line) => line.trim()));
  const blocks = [...guide.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => (match[1] as string).split('\n').map((line) => line.trim()));
  // A block whose first line is a line of the example is a quote; `// ...` marks what a quote leaves out.
  const quotes = blocks.filter((lines) => exampleLines.has(lines[0] as string));
  expect(quotes.length).toBeGreaterThanOrEqual(6);
  const untrue = quotes.flatMap((lines) => lines.filter((line) => line !== '' && !line.startsWith('// ...') && !exampleLines.has(line)));
  expect(untrue).toEqual([]);
});
