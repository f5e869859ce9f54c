export { HOSTILE_VALUES } from './cases/hostile-values.js';
export { CONFORMANCE_CASES } from './cases/index.js';
export { formatReport, summaryLine } from './format.js';
export { executeCase, runConformance, selectedCases, skippedGroups } from './run.js';
export type {
  CaseContext,
  CaseResult,
  CaseStatus,
  ConformanceCase,
  ConformanceGroup,
  ConformanceOptions,
  ConformanceReport,
} from './types.js';
export { CONFORMANCE_GROUPS } from './types.js';
