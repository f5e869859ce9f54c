import type { ConformanceCase } from '../types.js';
import { badInputCases } from './bad-input.js';
import { closingCases } from './closing.js';
import { concurrencyCases } from './concurrency.js';
import { deleteCases } from './delete.js';
import { faultCases } from './faults.js';
import { findRulesCases } from './find-rules.js';
import { hostileValueCases } from './hostile-values.js';
import { lockingCases } from './locking.js';
import { mergeCases } from './merge.js';
import { multiUserCases } from './multi-user.js';
import { persistenceCases } from './persistence.js';
import { processCases } from './processes.js';
import { roundTripCases } from './round-trip.js';
import { upsertCases } from './upsert.js';

/** Every case of the suite, group by group. */
export const CONFORMANCE_CASES: readonly ConformanceCase[] = [
  ...roundTripCases,
  ...findRulesCases,
  ...mergeCases,
  ...upsertCases,
  ...multiUserCases,
  ...deleteCases,
  ...persistenceCases,
  ...hostileValueCases,
  ...concurrencyCases,
  ...badInputCases,
  ...closingCases,
  ...faultCases,
  ...processCases,
  ...lockingCases,
];
