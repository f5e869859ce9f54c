import type { CaseResult, ConformanceReport } from './types.js';

const STATUS_WIDTH = 'SKIPPED'.length;
/** Lines of a failure shown under its row: the message and the first stack frames of an unexpected error. */
const DETAIL_LINES = 4;

/** One case as a table row; a failure's further lines (stack frames) indented below it. */
export function formatResult(result: CaseResult, idWidth = 0): string {
  const [first = '', ...rest] = result.status === 'skipped' ? [] : (result.error ?? '').split('\n');
  const row = `${result.status.toUpperCase().padEnd(STATUS_WIDTH)}  ${result.id.padEnd(idWidth)}  ${`${result.durationMs} ms`.padStart(8)}`;
  const lines = [first ? `${row}  ${first}` : row.trimEnd()];
  for (const line of rest.slice(0, DETAIL_LINES - 1)) lines.push(`${' '.repeat(STATUS_WIDTH + 2)}${line}`);
  return lines.join('\n');
}

/** What the report switched off and why, e.g. `switched off: persistence (no reopen option)`. */
export function switchedOffLine(report: ConformanceReport): string | null {
  if (report.skippedGroups.length === 0) return null;
  const groups = report.skippedGroups.map((group) => {
    const reason = report.skipReasons?.[group];
    return reason ? `${group} (${reason})` : group;
  });
  return `switched off: ${groups.join(', ')}`;
}

/** What follows the rows: groups switched off and why, cases that skipped themselves, a teardown failure, the summary. */
export function reportFooter(report: ConformanceReport): string[] {
  const lines: string[] = [];
  const switchedOff = switchedOffLine(report);
  if (switchedOff) lines.push(switchedOff);
  const cases = report.results.filter((result) => result.status === 'skipped' && !report.skippedGroups.includes(result.group));
  for (const result of cases) lines.push(`skipped ${result.id}: ${result.error ?? ''}`);
  if (report.teardownError) lines.push(report.teardownError);
  lines.push(summaryLine(report));
  return lines;
}

/** The report as a text table, one row per case, and a summary line. */
export function formatReport(report: ConformanceReport, title?: string): string {
  const idWidth = Math.max(6, ...report.results.map((result) => result.id.length));
  const lines = title ? [title] : [];
  for (const result of report.results) lines.push(formatResult(result, idWidth));
  lines.push(...reportFooter(report));
  return lines.join('\n');
}

/** `N passed, N failed, N skipped`. */
export function summaryLine(report: ConformanceReport): string {
  return `${report.passed} passed, ${report.failed} failed, ${report.skipped} skipped`;
}
