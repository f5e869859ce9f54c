import type { Command } from 'commander';

/** Placeholder: the `migrate` command is being written. */
export function registerMigrate(_program: Command): void {}
