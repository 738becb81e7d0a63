import type { Kysely } from 'kysely';

/**
 * API tokens of the admin API. Only a SHA-256 of each token is kept: a token is
 * 32 random bytes, so a plain hash is enough (no dictionary to attack), and the
 * database alone never lets anyone sign in.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('api_tokens')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
    .addColumn('member_id', 'text', (c) => c.notNull().references('members.id').onDelete('cascade'))
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('last_used_at', 'text')
    // One token of a given name per member: the first-run token is minted once
    // even when several `tagbox up` race for it.
    .addUniqueConstraint('api_tokens_member_name_unique', ['member_id', 'name'])
    .execute();
  await db.schema.createIndex('api_tokens_org_idx').on('api_tokens').column('org_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('api_tokens').execute();
}
