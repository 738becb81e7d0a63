import { Command, CommanderError } from 'commander';
import { describeError, isTagboxError } from '../errors.js';
import { registerAudit } from './audit.js';
import { registerBundle } from './bundle.js';
import { registerCa } from './ca.js';
import { registerDoctor } from './doctor.js';
import { registerExec } from './exec.js';
import { registerMigrate } from './migrate.js';
import { registerProxy } from './proxy.js';
import { registerProxyDaemon } from './proxy-daemon.js';
import { registerSecret } from './secret.js';
import { registerUp } from './up.js';
import { registerVault } from './vault.js';
import { registerVersion } from './version.js';

/**
 * The tagbox command. One file per verb in this folder, each exporting
 * `register<Verb>(program)`; only verbs that really work are registered.
 */
export function buildProgram(): Command {
  const program = new Command('tagbox')
    .description('Tag an AI agent in a chat channel; it works in a sandbox with no credentials.')
    .option('--home <dir>', 'data directory (default: $TAGBOX_HOME or ~/.tagbox)')
    .option('--config <file>', 'config file (default: $TAGBOX_HOME/tagbox.yaml)')
    .showHelpAfterError('(run `tagbox --help` for usage)')
    // Options after a verb belong to it; `tagbox exec` passes everything after its command through.
    .enablePositionalOptions()
    .exitOverride();

  registerVersion(program);
  registerDoctor(program);
  registerMigrate(program);
  registerAudit(program);
  registerSecret(program);
  registerVault(program);
  registerExec(program);
  registerProxy(program);
  registerCa(program);
  registerUp(program);
  registerProxyDaemon(program);
  registerBundle(program);
  return program;
}

/** Every subcommand inherits exitOverride so that usage errors map to exit 2. */
function propagateExitOverride(command: Command): void {
  for (const sub of command.commands) {
    sub.exitOverride();
    propagateExitOverride(sub);
  }
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  propagateExitOverride(program);
  try {
    await program.parseAsync(argv);
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version are "errors" to commander; they are successes to users.
      if (error.exitCode === 0) return 0;
      return 2;
    }
    if (isTagboxError(error)) {
      process.stderr.write(`tagbox: ${error.message}\n`);
      return error.exitCode;
    }
    process.stderr.write(`tagbox: unexpected error: ${describeError(error)}\n`);
    if (process.env.TAGBOX_DEBUG) process.stderr.write(`${(error as Error).stack ?? ''}\n`);
    return 1;
  }
}

const code = await main(process.argv);
// Let pending stdout writes drain before leaving (large JSON Lines exports).
process.exitCode = code;
