import type { Command } from 'commander';
import { describeLocation } from '../store/connect.js';
import { migrateToLatest } from '../store/database.js';
import { contextFrom } from './context.js';

export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description('apply database migrations (also done on start)')
    .action(async (_opts, command: Command) => {
      const ctx = contextFrom(command);
      const store = await ctx.openStore({ migrate: false });
      try {
        const { applied } = await migrateToLatest(store);
        const where = describeLocation(store.location);
        process.stdout.write(applied.length ? `applied ${applied.join(', ')} to ${where}\n` : `${where} is up to date\n`);
      } finally {
        await store.close();
      }
    });
}
