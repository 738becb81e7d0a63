import type { Kysely } from 'kysely';

/**
 * GitHub (docs/GITHUB.md).
 *   connections.github  a GitHub App connection's settings (JSON {repositories?, permissions?,
 *                       pushBranches}) or null for every other connection
 *   turn_outputs        what a turn left outside the sandbox: the branches it pushed and the pull
 *                       requests it opened, as the Agent Proxy saw them succeed; unique per turn and
 *                       thing, so a repeated report is recorded once
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('connections').addColumn('github', 'text').execute();
  await db.schema
    .createTable('turn_outputs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('session_id', 'text', (c) => c.notNull().references('sessions.id').onDelete('cascade'))
    .addColumn('turn_id', 'text', (c) => c.notNull().references('turns.id').onDelete('cascade'))
    // 'pull-request' | 'branch'
    .addColumn('kind', 'text', (c) => c.notNull())
    // `owner/repo`
    .addColumn('repository', 'text', (c) => c.notNull())
    // A pull request's number; a branch's ref name (refs/heads/...).
    .addColumn('ref', 'text', (c) => c.notNull())
    .addColumn('url', 'text')
    .addColumn('title', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addUniqueConstraint('turn_outputs_unique', ['turn_id', 'kind', 'repository', 'ref'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('turn_outputs').execute();
  await db.schema.alterTable('connections').dropColumn('github').execute();
}
