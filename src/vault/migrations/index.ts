import type { Migration, MigrationProvider } from 'kysely';
import * as m0001 from './0001_vault.js';

/** The vault's migrations, separate from the control plane's; append only. */
export const vaultMigrations: Record<string, Migration> = {
  '0001_vault': m0001,
};

export const vaultMigrationProvider: MigrationProvider = {
  getMigrations: async () => vaultMigrations,
};
