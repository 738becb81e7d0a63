import { Command, CommanderError } from 'commander';
import { describeError, isTagboxError } from '../errors.js';

type Register = (program: Command) => void;

/**
 * The verbs, in help order. One file per verb in this folder, each exporting
 * `register<Verb>(program)`; only verbs that really work are listed. Each is
 * loaded only when it is the one being run (or for help): the server, the
 * proxy and the sandbox pull in large libraries a quick verb should not pay for.
 */
const VERBS: Record<string, () => Promise<Register>> = {
  version: async () => (await import('./version.js')).registerVersion,
  doctor: async () => (await import('./doctor.js')).registerDoctor,
  migrate: async () => (await import('./migrate.js')).registerMigrate,
  audit: async () => (await import('./audit.js')).registerAudit,
  secret: async () => (await import('./secret.js')).registerSecret,
  vault: async () => (await import('./vault.js')).registerVault,
  exec: async () => (await import('./exec.js')).registerExec,
  proxy: async () => (await import('./proxy.js')).registerProxy,
  ca: async () => (await import('./ca.js')).registerCa,
  up: async () => (await import('./up.js')).registerUp,
  chat: async () => (await import('./chat.js')).registerChat,
  'proxy-daemon': async () => (await import('./proxy-daemon.js')).registerProxyDaemon,
  'server-daemon': async () => (await import('./server-daemon.js')).registerServerDaemon,
  bundle: async () => (await import('./bundle.js')).registerBundle,
  plugin: async () => (await import('./plugin.js')).registerPlugin,
  token: async () => (await import('./token.js')).registerToken,
  'login-link': async () => (await import('./login-link.js')).registerLoginLink,
  schedule: async () => (await import('./schedule.js')).registerSchedule,
};

/** The tagbox command, with the verb named in argv (or, for help and mistakes, every verb). */
export async function buildProgram(argv: string[] = []): Promise<Command> {
  const program = new Command('tagbox')
    .description('Tag an AI agent in a chat channel; it works in a sandbox with no credentials.')
    .option('--home <dir>', 'data directory (default: $TAGBOX_HOME or ~/.tagbox)')
    .option('--config <file>', 'config file (default: $TAGBOX_HOME/tagbox.yaml)')
    .showHelpAfterError('(run `tagbox --help` for usage)')
    // Options after a verb belong to it; `tagbox exec` passes everything after its command through.
    .enablePositionalOptions()
    .exitOverride();

  const verb = verbIn(argv);
  const names = verb !== undefined && verb in VERBS ? [verb] : Object.keys(VERBS);
  for (const register of await Promise.all(names.map((name) => VERBS[name]!()))) register(program);
  return program;
}

/** The first word that is not a global option or its value: the verb. */
function verbIn(argv: string[]): string | undefined {
  for (let i = 2; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--home' || arg === '--config') i += 1;
    else if (!arg.startsWith('-')) return arg;
    else if (arg === '--') return undefined;
  }
  return undefined;
}

/** Every subcommand inherits exitOverride so that usage errors map to exit 2. */
function propagateExitOverride(command: Command): void {
  for (const sub of command.commands) {
    sub.exitOverride();
    propagateExitOverride(sub);
  }
}

export async function main(argv: string[]): Promise<number> {
  const program = await buildProgram(argv);
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
