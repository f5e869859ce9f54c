/**
 * Every store present on this machine side by side with the raw driver (the floor), Keyv and, for files
 * and MySQL, Zoho's own stores: findToken by user name, findTokenById, saveToken of a refreshed access
 * token and saveToken of a new user, at two sizes, contenders interleaved. Prints one Markdown table and
 * writes results.json. See ../README.md for how to read it.
 *
 *   pnpm bench                     1,000 and 100,000 tokens, 1,000 operations per cell
 *   pnpm bench -- --quick          100 and 1,000 tokens, 50 operations per cell: a smoke run
 *   --strict                       a backend that cannot run is an error (the tests use it), not a note
 *   --out <file>                   where results.json goes (default: results.json of this package)
 *   --only sqlite,file,...         some backends only
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, hostname, platform, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Backend, CONTENDER_KINDS, type ContenderKind, checkLoaded, OPERATIONS, type Settings } from './backend.js';
import { openFile } from './backends/file.js';
import { openMySQL } from './backends/mysql.js';
import { openPostgres } from './backends/postgres.js';
import { openRedis } from './backends/redis.js';
import { openSqlite } from './backends/sqlite.js';
import { formatJson } from './json.js';
import { interleaved, type Timing } from './measure.js';
import { type Cell, formatTable } from './table.js';

const BACKENDS: Record<string, (settings: Settings) => Promise<Backend>> = {
  sqlite: openSqlite,
  file: openFile,
  postgres: openPostgres,
  mysql: openMySQL,
  redis: openRedis,
};

interface Options {
  quick: boolean;
  strict: boolean;
  out: string;
  only: string[];
}

function parseOptions(argv: string[]): Options {
  const options: Options = {
    quick: false,
    strict: false,
    out: fileURLToPath(new URL('../results.json', import.meta.url)),
    only: Object.keys(BACKENDS),
  };
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index];
    if (argument === '--') continue;
    if (argument === '--quick') options.quick = true;
    else if (argument === '--strict') options.strict = true;
    else if (argument === '--out' && argv[index + 1] !== undefined) options.out = argv[++index] as string;
    else if (argument === '--only' && argv[index + 1] !== undefined) {
      options.only = (argv[++index] as string).split(',');
      const unknown = options.only.filter((name) => !(name in BACKENDS));
      if (unknown.length > 0) throw new Error(`unknown backend ${unknown.join(', ')}; known: ${Object.keys(BACKENDS).join(', ')}`);
    } else throw new Error(`unknown argument ${argument}; see the comment at the top of bench/src/main.ts`);
  }
  return options;
}

const log = (text: string) => process.stderr.write(`${text}\n`);

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const sizes = options.quick ? [100, 1_000] : [1_000, 100_000];
  const operations = options.quick ? 50 : 1_000;
  const warmup = options.quick ? 5 : 100;
  const folder = mkdtempSync(join(tmpdir(), 'crm-bench-'));
  const settings: Settings = { tag: randomBytes(4).toString('hex'), folder };
  const cells: Cell[] = [];
  const versions: Record<string, string> = {};
  const missing: Array<{ backend: string; reason: string }> = [];
  const labels: Record<string, Partial<Record<ContenderKind, string>>> = {};
  const started = Date.now();
  try {
    for (const key of options.only) {
      let backend: Backend;
      try {
        backend = await (BACKENDS[key] as (settings: Settings) => Promise<Backend>)(settings);
      } catch (error) {
        const reason = error instanceof Error ? (error.message.split('\n')[0] ?? String(error)) : String(error);
        log(`${key}: missing (${reason})`);
        missing.push({ backend: key, reason });
        continue;
      }
      versions[backend.name] = backend.version;
      try {
        for (const size of sizes) {
          const loadStarted = Date.now();
          const loaded = await backend.load(size);
          try {
            log(`${backend.name}: ${size.toLocaleString('en')} tokens loaded into every contender in ${Date.now() - loadStarted} ms`);
            for (const contender of loaded.contenders) {
              await checkLoaded(contender, size);
              labels[backend.name] = { ...labels[backend.name], [contender.kind]: contender.label };
            }
            for (const operation of OPERATIONS) {
              const entrants = loaded.contenders.map((contender) => ({
                run: contender.operations[operation],
                operations: Math.min(operations, contender.fewer?.(operation, size) ?? operations),
              }));
              const timings: Timing[] = await interleaved(entrants, operations, warmup);
              loaded.contenders.forEach((contender, index) => {
                cells.push({ backend: backend.name, size, operation, contender: contender.kind, ...(timings[index] as Timing) });
              });
              log(`${backend.name} ${size.toLocaleString('en')} ${operation}: done after ${((Date.now() - started) / 1000).toFixed(0)} s`);
            }
          } finally {
            await loaded.close();
          }
        }
      } finally {
        await backend.close();
      }
    }
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }

  const title = `${options.quick ? 'Quick run' : 'Full run'}: median / p99 in µs over ${operations.toLocaleString('en')} operations per cell (fewer where shown as n=...), contenders interleaved; Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}`;
  console.log(formatTable(title, cells, operations));
  console.log('');
  for (const [backend, kinds] of Object.entries(labels)) {
    console.log(
      `- ${backend} (${versions[backend]}): ${CONTENDER_KINDS.filter((kind) => kinds[kind])
        .map((kind) => `${kind} = ${kinds[kind]}`)
        .join('; ')}`,
    );
  }
  for (const { backend, reason } of missing) console.log(`- ${backend}: missing (${reason})`);
  console.log(`\nTotal ${((Date.now() - started) / 1000).toFixed(0)} s.`);

  const results = {
    date: new Date().toISOString(),
    mode: options.quick ? 'quick' : 'full',
    machine: {
      hostname: hostname(),
      platform: platform(),
      release: release(),
      cpus: cpus().length,
      cpu: cpus()[0]?.model,
      memoryBytes: totalmem(),
    },
    node: process.version,
    servers: versions,
    missing,
    operationsPerCell: operations,
    warmup,
    sizes,
    contenders: labels,
    cells,
  };
  writeFileSync(options.out, `${formatJson(results)}\n`);
  log(`results written to ${options.out}`);
  if (options.strict && missing.length > 0) {
    throw new Error(`--strict: ${missing.map(({ backend, reason }) => `${backend} is missing (${reason})`).join('; ')}`);
  }
}

await main();
