import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { failure } from './errors.js';

/**
 * TAGBOX_HOME holds the config, the database, the vault, the CA and sandbox
 * workspaces. Precedence: --home flag, then TAGBOX_HOME, then ~/.tagbox.
 */
export function resolveHome(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  const chosen = flag ?? env.TAGBOX_HOME ?? join(homedir(), '.tagbox');
  return resolve(chosen);
}

/** Creates the home directory (mode 0700) on first use; returns its path. */
export function ensureHome(home: string): string {
  try {
    const created = mkdirSync(home, { recursive: true, mode: 0o700 });
    // mkdir's mode is masked by umask; make the first-use mode exact. An existing
    // directory is left as it is: `tagbox doctor` reports a loose mode.
    if (created !== undefined) chmodSync(home, 0o700);
  } catch (error) {
    throw failure(`cannot create TAGBOX_HOME ${home}: ${(error as Error).message}`, 'home_unavailable', error);
  }
  return home;
}

/**
 * Well-known paths inside TAGBOX_HOME, in one place. The vault's database and
 * master key live in vault/, a directory that only the Agent Proxy's user can
 * enter under privilege separation; a home made before that keeps them where
 * they were (TAGBOX_HOME/vault.db, TAGBOX_HOME/master.key) until `tagbox up`,
 * started as root, moves them in.
 */
export function homePaths(home: string) {
  const vaultDir = join(home, 'vault');
  const legacy = (name: string) => (existsSync(join(home, name)) && !existsSync(join(vaultDir, name)) ? join(home, name) : join(vaultDir, name));
  return {
    home,
    config: join(home, 'tagbox.yaml'),
    database: join(home, 'tagbox.db'),
    vaultDir,
    vaultDatabase: legacy('vault.db'),
    masterKey: legacy('master.key'),
    caDir: join(home, 'ca'),
    sandboxes: join(home, 'sandboxes'),
    sockets: join(home, 'run'),
    /** The local Owner's API token, written 0600 by `tagbox up`'s first run for `tagbox chat` and friends. */
    ownerToken: join(home, 'owner.token'),
  } as const;
}
