import type { Kysely } from 'kysely';

/** The key pair, its master-key wrappings, and the sealed secrets. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('vault_keypair')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('public_key', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();

  // Usually one row; two only while `vault rotate-master` is under way, so that
  // a crash at any point leaves a wrapping for whichever key is in place.
  await db.schema
    .createTable('vault_key_wrappings')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('wrapped_private_key', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('secrets')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('envelope', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('last_used_at', 'text')
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['secrets', 'vault_key_wrappings', 'vault_keypair']) await db.schema.dropTable(table).ifExists().execute();
}
