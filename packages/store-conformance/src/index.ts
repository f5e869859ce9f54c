export { HOSTILE_VALUES } from './cases/hostile-values.js';
export { CONFORMANCE_CASES } from './cases/index.js';
export { formatReport, formatResult, reportFooter, summaryLine, switchedOffLine } from './format.js';
export { loadOptions } from './load-options.js';
export { CaseSkipped, describeError } from './outcome.js';
export { checkOptions, executeCase, runConformance, selectedCases, skippedGroups, skipReasons } from './run.js';
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
