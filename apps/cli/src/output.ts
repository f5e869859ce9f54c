/** What every command shares: exit codes, and turning an error into a message and an exit code. */
import { TokenStoreError } from '@crm/core';

export const EXIT = { ok: 0, problem: 1, usage: 2, unavailable: 3 } as const;

export const EXIT_CODES_HELP = `
Exit codes:
  0  done
  1  the command ran and found a problem (a failed check or case, a verification mismatch)
  2  usage error (unknown command or option, a bad store URL)
  3  the store or its server could not be reached or used, or its table, key prefix or file is not there`;

/** A failure the command words itself, with the exit code it ends with. Its message holds no secret. */
export class CommandFailure extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'CommandFailure';
  }
}

/** Prints an error without secrets (TokenStoreError messages hold none) and exits with its code. */
export function handleFailure(error: unknown): never {
  if (error instanceof CommandFailure) {
    console.error(`crm-tokens: ${error.message}`);
    process.exit(error.exitCode);
  }
  if (TokenStoreError.is(error)) {
    console.error(`crm-tokens: ${error.message}`);
    process.exit(error.code === 'INVALID_ARGUMENT' ? EXIT.usage : EXIT.unavailable);
  }
  console.error(`crm-tokens: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(EXIT.problem);
}
