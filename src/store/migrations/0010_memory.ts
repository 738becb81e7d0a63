import type { Kysely } from 'kysely';

/**
 * Channel memory (DESIGN.md "Engines"): one text file per channel, or per
 * member in a DM, that the agent edits in its sandbox. Each change copied out
 * is a new version; the primary key (scope, version) is what keeps two
 * sessions saving at once from taking the same number (the loser retries),
 * on SQLite and on Postgres alike.
 *
 * `scope` is `channel:<id>` | `dm:<member id>` (the session's place key) and
 * `session_id` is the thread that wrote it; neither is a foreign key, so a
 * memory outlives the threads that wrote it and is gone only when cleared.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('memory_versions')
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    // The file as text (UTF-8, at most 64 KiB of it), exactly as the agent will find it.
    .addColumn('content', 'text', (c) => c.notNull())
    .addColumn('bytes', 'integer', (c) => c.notNull())
    .addColumn('session_id', 'text', (c) => c.notNull())
    .addColumn('turn_id', 'text')
    // The version the session had copied in: below version - 1, someone else wrote in between (last writer wins).
    .addColumn('base_version', 'integer')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('memory_versions_pk', ['scope', 'version'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('memory_versions').execute();
}
