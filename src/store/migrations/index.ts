import type { Migration, MigrationProvider } from 'kysely';
import * as m0001 from './0001_initial.js';

/**
 * One ordered list of migrations for both dialects. Later issues append
 * (never edit) entries: sessions, messages, schedules.
 */
export const migrations: Record<string, Migration> = {
  '0001_initial': m0001,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
