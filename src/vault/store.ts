import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Migrator } from 'kysely';
import type { TagboxConfig } from '../config/schema.js';
import { failure } from '../errors.js';
import { homePaths } from '../home.js';
import { describeLocation, openStore, type Store, type StoreLocation } from '../store/connect.js';
import { vaultMigrationProvider } from './migrations/index.js';
import type { VaultDatabase } from './tables.js';

export type VaultStore = Store<VaultDatabase>;

/**
 * The vault's own store: TAGBOX_HOME/vault/vault.db, or the `<schema>_vault` schema
 * when database.url is set. Never the control plane's file or schema.
 */
export function vaultStoreLocation(home: string, config: TagboxConfig): StoreLocation {
  return config.database.url
    ? { dialect: 'postgres', url: config.database.url, schema: `${config.database.schema}_vault` }
    : { dialect: 'sqlite', file: homePaths(home).vaultDatabase };
}

export async function openVaultStore(location: StoreLocation): Promise<VaultStore> {
  // TAGBOX_HOME/vault/: under privilege separation the Agent Proxy's alone.
  if (location.dialect === 'sqlite') mkdirSync(dirname(location.file), { recursive: true, mode: 0o700 });
  const store = await openStore<VaultDatabase>(location);
  try {
    // The vault keeps its own migration history in its own file or schema. On
    // Postgres the schema must be named: without it Kysely takes bookkeeping
    // tables found in any other schema of the database for its own.
    const migrator = new Migrator({
      db: store.db,
      provider: vaultMigrationProvider,
      ...(location.dialect === 'postgres' ? { migrationTableSchema: location.schema } : {}),
    });
    const { error, results } = await migrator.migrateToLatest();
    if (error) {
      const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? '';
      throw failure(`vault migration ${failed} failed on ${describeLocation(location)}: ${(error as Error).message}`, 'migration_failed', error);
    }
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}
