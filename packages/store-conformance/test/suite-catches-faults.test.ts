import { runConformance } from '../src/index';
import { FAULTS, type Fault, FaultyStore } from './faulty-store';

describe('the suite fails a store that breaks one rule', () => {
  test.each(Object.keys(FAULTS) as Fault[])('%s', async (fault) => {
    const report = await runConformance({ create: () => new FaultyStore(fault) });
    const failedIds = report.results.filter((result) => result.status === 'failed').map((result) => result.id);
    expect(report.failed).toBeGreaterThan(0);
    expect(failedIds).toContain(FAULTS[fault]);
  });
});
