import type { Command } from 'commander';
import { auditCheckpointOptions, enableAuditCheckpoints } from '../audit/checkpoints.js';
import { loadConfig } from '../config/load.js';
import type { TagboxConfig } from '../config/schema.js';
import { ensureHome, homePaths, resolveHome } from '../home.js';
import { createLogger, type Logger } from '../log.js';
import { controlStoreLocation, openControlStore, type ControlStore } from '../store/database.js';

export interface GlobalOptions {
  home?: string;
  config?: string;
}

/** What every verb starts from: TAGBOX_HOME (created 0700), the validated config, a logger. */
export interface CliContext {
  home: string;
  paths: ReturnType<typeof homePaths>;
  config: TagboxConfig;
  configFile: string | undefined;
  logger: Logger;
  /**
   * Opens the control-plane store (migrating it); the caller closes it. Audit
   * appends through it get signed checkpoints, and closing it signs the rest.
   */
  openStore(options?: { migrate?: boolean }): Promise<ControlStore>;
}

export function contextFrom(command: Command, options: { createHome?: boolean } = {}): CliContext {
  return contextFromGlobals(command.optsWithGlobals<GlobalOptions>(), options);
}

/** contextFrom for the global options alone (a worker thread has them, not the command). */
export function contextFromGlobals(globals: GlobalOptions, options: { createHome?: boolean } = {}): CliContext {
  const home = resolveHome(globals.home);
  const paths = homePaths(home);
  if (options.createHome ?? true) ensureHome(home);
  const { config, file } = loadConfig({ file: globals.config ?? paths.config, explicit: globals.config !== undefined });
  const logger = createLogger({ level: config.log.level });
  return {
    home,
    paths,
    config,
    configFile: file,
    logger,
    openStore: async (opts) => {
      const store = await openControlStore(controlStoreLocation(home, config), opts);
      enableAuditCheckpoints(store, auditCheckpointOptions(home, config, logger));
      return store;
    },
  };
}

/** Runs fn with an open control store and always closes it. */
export async function withStore<T>(ctx: CliContext, fn: (store: ControlStore) => Promise<T>): Promise<T> {
  const store = await ctx.openStore();
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}
