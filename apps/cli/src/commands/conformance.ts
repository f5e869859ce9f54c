import type { Command } from 'commander';

/** Placeholder: the `conformance` command is being written. */
export function registerConformance(_program: Command): void {}
