import type { Kysely } from 'kysely';

/**
 * Earlier messages of a thread that a surface supplied when the agent was
 * tagged mid-thread (Slack's `conversations.replies`): stored with the turn
 * they came with, marked as context — something to read, not a request.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('messages').addColumn('context', 'integer', (c) => c.notNull().defaultTo(0)).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('messages').dropColumn('context').execute();
}
