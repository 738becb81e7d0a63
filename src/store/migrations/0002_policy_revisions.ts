import type { Kysely } from 'kysely';

/**
 * One revision counter per org, bumped in the same transaction as every
 * access change. Proxies and servers compare it to know when to recompile a
 * policy: cheap to poll on SQLite, and the row a Postgres NOTIFY points at.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('policy_revisions')
    .addColumn('org_id', 'text', (c) => c.primaryKey().references('orgs.id').onDelete('cascade'))
    .addColumn('revision', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('policy_revisions').execute();
}
