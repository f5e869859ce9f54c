import { join } from 'node:path';
import { type ConformanceOptions, runConformance } from '../src/index';
import { EXACT_FAULTS, FAULTS, type Fault, FaultyStore, VALUE_LIMITS } from './faulty-store';
import { jsonFileOptions } from './fixtures/json-file-options';

/** The faulty stores declare limits and take injected faults, so every group runs on them. */
function faultyOptions(fault: Fault | null): ConformanceOptions<FaultyStore> {
  return {
    create: () => new FaultyStore(fault, VALUE_LIMITS),
    injectFault: (store) => store.injectFault(),
    valueLimits: VALUE_LIMITS,
  };
}

async function failedCases(options: ConformanceOptions<FaultyStore>): Promise<string[]> {
  const report = await runConformance(options as unknown as ConformanceOptions);
  return report.results.filter((result) => result.status === 'failed').map((result) => result.id);
}

test('the faulty store without a fault passes every case it can run (limits, faults and closing included)', async () => {
  const report = await runConformance(faultyOptions(null) as unknown as ConformanceOptions);
  expect(report.results.filter((result) => result.status === 'failed')).toEqual([]);
  expect(report.skippedGroups).toEqual(['persistence', 'processes']);
  const ran = report.results.filter((result) => result.status === 'passed').map((result) => result.id);
  expect(ran).toEqual(
    expect.arrayContaining(['hostile-values/declared-limits', 'faults/save-error-hides-secrets', 'closing/calls-after-close']),
  );
});

describe('the suite fails a store that breaks one rule', () => {
  test.each(Object.keys(FAULTS) as Array<keyof typeof FAULTS>)('%s', async (fault) => {
    const failed = await failedCases(faultyOptions(fault));
    expect(failed).toContain(FAULTS[fault]);
  });
});

describe('the suite fails exactly the intended cases', () => {
  test.each(Object.keys(EXACT_FAULTS) as Array<keyof typeof EXACT_FAULTS>)('%s', async (fault) => {
    const failed = await failedCases(faultyOptions(fault));
    expect(failed).toEqual(EXACT_FAULTS[fault]);
  });
});

describe('processes: a store that is only safe within one process', () => {
  const fixtures = join(__dirname, 'fixtures');

  test('a JSON file store that caches and writes its cache back fails both cross-process cases', async () => {
    const options = { ...jsonFileOptions(false), module: join(fixtures, 'in-process-only-options.ts'), filter: 'processes/' };
    const report = await runConformance(options as unknown as ConformanceOptions);
    const failed = report.results.filter((result) => result.status === 'failed');
    expect(failed.map((result) => result.id)).toEqual(['processes/parallel-saves', 'processes/find-racing-saves']);
    expect(failed[0]?.error).toMatch(/expected 101 tokens, found \d+/);
    expect(failed[1]?.error).toMatch(/last saved version/);
  });

  test('the same store reading and writing under a lock passes them', async () => {
    const options = { ...jsonFileOptions(true), module: join(fixtures, 'json-file-options.ts'), filter: 'processes/' };
    const report = await runConformance(options as unknown as ConformanceOptions);
    expect(report.results.map((result) => [result.id, result.status, result.error])).toEqual([
      ['processes/parallel-saves', 'passed', undefined],
      ['processes/find-racing-saves', 'passed', undefined],
    ]);
  });
});
