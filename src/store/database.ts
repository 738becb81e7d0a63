import { Migrator } from 'kysely';
import type { TagboxConfig } from '../config/schema.js';
import { failure } from '../errors.js';
import { homePaths } from '../home.js';
import { describeLocation, openStore, type Store, type StoreLocation } from './connect.js';
import { migrationProvider } from './migrations/index.js';
import type { Database } from './tables.js';

export type ControlStore = Store<Database>;

/** The control-plane database: SQLite in TAGBOX_HOME, or Postgres when database.url is set. */
export function controlStoreLocation(home: string, config: TagboxConfig): StoreLocation {
  return config.database.url
    ? { dialect: 'postgres', url: config.database.url, schema: config.database.schema }
    : { dialect: 'sqlite', file: homePaths(home).database };
}

export async function openControlStore(location: StoreLocation, options: { migrate?: boolean } = {}): Promise<ControlStore> {
  const store = await openStore<Database>(location);
  if (options.migrate ?? true) {
    try {
      await migrateToLatest(store);
    } catch (error) {
      await store.close();
      throw error;
    }
  }
  return store;
}

export interface MigrationReport {
  applied: string[];
  pending: string[];
}

export async function migrateToLatest(store: ControlStore): Promise<MigrationReport> {
  const migrator = new Migrator({ db: store.db, provider: migrationProvider });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    throw failure(
      `migration ${failed ?? ''} failed on ${describeLocation(store.location)}: ${(error as Error).message}`.replace('  ', ' '),
      'migration_failed',
      error,
    );
  }
  return { applied: (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName), pending: [] };
}

export async function migrationStatus(store: ControlStore): Promise<MigrationReport> {
  const migrator = new Migrator({ db: store.db, provider: migrationProvider });
  const all = await migrator.getMigrations();
  return {
    applied: all.filter((m) => m.executedAt !== undefined).map((m) => m.name),
    pending: all.filter((m) => m.executedAt === undefined).map((m) => m.name),
  };
}
