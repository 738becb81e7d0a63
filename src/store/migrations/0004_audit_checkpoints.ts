import { sql, type Kysely } from 'kysely';

/**
 * Signed checkpoints of the audit chain (src/audit/checkpoint.ts): each one is
 * an Ed25519 signature, by a key kept outside the database, over the (seq,
 * hash) of one event, so that someone who can write the database but holds no
 * key cannot recompute the chain unnoticed. `head` checkpoints cover the chain
 * as far as it went; the one `anchor` checkpoint covers where retention pruning
 * left the chain's start. Every column is covered by the signature.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('audit_checkpoints')
    .addColumn('seq', 'bigint', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull())
    .addColumn('ts', 'text', (c) => c.notNull())
    .addColumn('key_id', 'text', (c) => c.notNull())
    .addColumn('signature', 'text', (c) => c.notNull())
    // seq first: "the newest checkpoint" reads the end of the primary key.
    .addPrimaryKeyConstraint('audit_checkpoints_pk', ['seq', 'kind'])
    .addCheckConstraint('audit_checkpoints_kind', sql`kind in ('head', 'anchor')`)
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('audit_checkpoints').execute();
}
