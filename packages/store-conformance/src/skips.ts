/** Which groups the options switch off, and why: the runner reports them, and cases that need a group's means ask. */
import { CONFORMANCE_GROUPS, type ConformanceGroup, type ConformanceOptions } from './types.js';

/** Why each switched-off group is off: declared in `skip`, or an option it needs is missing. */
export function skipReasons(options: ConformanceOptions): Partial<Record<ConformanceGroup, string>> {
  const reasons: Partial<Record<ConformanceGroup, string>> = {};
  for (const group of options.skip ?? []) reasons[group] = 'declared in skip';
  if (!options.reopen) reasons.persistence ??= 'no reopen option';
  if (!options.injectFault) reasons.faults ??= 'no injectFault option';
  if (options.sharedAcrossProcesses === false) reasons.processes ??= 'store declares sharedAcrossProcesses: false';
  const missing = (['share', 'openShared', 'module'] as const).filter((name) => !options[name]);
  if (missing.length > 0) reasons.processes ??= `no share/openShared/module (missing: ${missing.join(', ')})`;
  return reasons;
}

/** The groups the options switch off, in suite order. */
export function skippedGroups(options: ConformanceOptions): ConformanceGroup[] {
  const reasons = skipReasons(options);
  return CONFORMANCE_GROUPS.filter((group) => reasons[group] !== undefined);
}
