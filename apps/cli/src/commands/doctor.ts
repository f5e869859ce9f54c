import type { Command } from 'commander';

/** Placeholder: the `doctor` command is being written. */
export function registerDoctor(_program: Command): void {}
