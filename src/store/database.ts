import { Migrator, type Kysely } from 'kysely';
import type { TagboxConfig } from '../config/schema.js';
import { failure } from '../errors.js';
import { homePaths } from '../home.js';
import { describeLocation, openStore, type Store, type StoreLocation } from './connect.js';
import { migrationProvider } from './migrations/index.js';
import { withWriteTransaction } from './write-transaction.js';
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
  let { error, results } = await withMigrationLock(store, (db) => migratorFor(store, db).migrateToLatest());
  // Kysely's migrator looks its tables up across every schema of the database;
  // another store's schema or table dropped at that moment (3F000, 42P01) fails
  // the lookup, not our migration: the transaction rolled back, so try again.
  for (let retry = 0; error && retry < 3 && otherSchemaVanished(error, store); retry++) {
    ({ error, results } = await withMigrationLock(store, (db) => migratorFor(store, db).migrateToLatest()));
  }
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

function otherSchemaVanished(error: unknown, store: ControlStore): boolean {
  return (
    store.location.dialect === 'postgres' &&
    ['3F000', '42P01'].includes((error as { code?: string }).code ?? '') &&
    !(error as Error).message.includes(`"${store.location.schema}"`)
  );
}

export async function migrationStatus(store: ControlStore): Promise<MigrationReport> {
  const all = await migratorFor(store, store.db).getMigrations();
  return {
    applied: all.filter((m) => m.executedAt !== undefined).map((m) => m.name),
    pending: all.filter((m) => m.executedAt === undefined).map((m) => m.name),
  };
}

// Kysely looks for its bookkeeping tables across all schemas unless told which;
// on a shared Postgres database that would find another store's tables.
function migratorFor(store: ControlStore, db: Kysely<unknown> | Kysely<Database>): Migrator {
  return new Migrator({
    db: db as Kysely<unknown>,
    provider: migrationProvider,
    disableTransactions: true,
    ...(store.location.dialect === 'postgres' ? { migrationTableSchema: store.location.schema } : {}),
  });
}

/**
 * Migrations run in one write transaction holding a cross-process lock, so
 * that several processes starting at once (several `tagbox up` replicas, or a
 * CLI next to a server) migrate exactly once; Kysely's own lock does not cover
 * the very first run. Both dialects have transactional DDL.
 */
function withMigrationLock<T>(store: ControlStore, fn: (db: Kysely<unknown>) => Promise<T>): Promise<T> {
  return withWriteTransaction(store, 'migrations', (db) => fn(db as Kysely<unknown>));
}
