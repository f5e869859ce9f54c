import type { Command } from 'commander';

/** Placeholder: the `tokens` command is being written. */
export function registerTokens(_program: Command): void {}
