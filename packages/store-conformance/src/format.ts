import type { ConformanceReport } from './types.js';

/** The report as a text table, one row per case, and a summary line. */
export function formatReport(report: ConformanceReport, title?: string): string {
  const rows = report.results.map((result) => [
    result.status.toUpperCase(),
    result.id,
    `${result.durationMs} ms`,
    result.status === 'failed' ? (result.error ?? '') : '',
  ]);
  const widths = [0, 1, 2].map((column) => Math.max(...rows.map((row) => row[column]!.length), 6));
  const lines = title ? [title] : [];
  for (const row of rows) {
    lines.push(
      `${row[0]!.padEnd(widths[0]!)}  ${row[1]!.padEnd(widths[1]!)}  ${row[2]!.padStart(widths[2]!)}${row[3] ? `  ${row[3].split('\n')[0]}` : ''}`,
    );
  }
  if (report.skippedGroups.length > 0) lines.push(`switched off: ${report.skippedGroups.join(', ')}`);
  lines.push(summaryLine(report));
  return lines.join('\n');
}

/** `N passed, N failed, N skipped`. */
export function summaryLine(report: ConformanceReport): string {
  return `${report.passed} passed, ${report.failed} failed, ${report.skipped} skipped`;
}
