/**
 * `crm-tokens`: the command line tool. Each command lives in `src/commands/<name>.ts` and adds itself to the
 * program with `register(program)`. Exit codes (also in the README and `--help`):
 *   0  done
 *   1  the command ran and found a problem (a failed check, a verification mismatch, a failed conformance case)
 *   2  usage error (unknown command or option, a bad store URL)
 *   3  the store or server could not be reached or used
 */
import { Command } from 'commander';
import { registerConformance } from './commands/conformance.js';
import { registerDemo } from './commands/demo.js';
import { registerDoctor } from './commands/doctor.js';
import { registerMigrate } from './commands/migrate.js';
import { registerRekey } from './commands/rekey.js';
import { registerTokens } from './commands/tokens.js';
import { EXIT_CODES_HELP, handleFailure } from './output.js';
import { redactText } from './redact.js';

const program = new Command('crm-tokens')
  .description('Zoho CRM OAuth tokens in any store: a lifecycle demo, list and clean up tokens, migrate between stores, check a store.')
  .version('0.1.0')
  .showHelpAfterError()
  .addHelpText('after', EXIT_CODES_HELP);
// commander's usage errors quote arguments (`unknown command 'postgres://app:pw@db/crm'`): no password shown.
// Set before the commands are added, which copy it (commander's copyInheritedSettings).
program.configureOutput({ outputError: (text, write) => write(redactText(text, process.argv)) });
// Usage errors exit with 2 (commander's default exit code for them is 1).
program.exitOverride((error) => {
  if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') process.exit(0);
  process.exit(2);
});

// Output piped into a reader that stops early (`crm-tokens list | head`): stop quietly, as other tools do.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
}

registerDemo(program);
registerTokens(program);
registerMigrate(program);
registerConformance(program);
registerDoctor(program);
registerRekey(program);

program.parseAsync(process.argv).catch(handleFailure);
