import { sql, type Kysely } from 'kysely';

/**
 * Schedules (DESIGN.md "Surfaces: Schedules"): a cron-timed prompt posted into
 * a channel, and one row per firing. The firing's primary key (schedule, fire
 * time) is the claim: whichever process or replica inserts it first fires it,
 * so each firing happens exactly once, on SQLite and on Postgres alike.
 *
 * `created_by` is deliberately not a foreign key: a schedule whose creator
 * has gone keeps failing visibly (a `failed` run, an audit event) instead of
 * vanishing silently with the member.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('schedules')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
    .addColumn('channel_id', 'text', (c) => c.notNull().references('channels.id').onDelete('cascade'))
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('cron', 'text', (c) => c.notNull())
    .addColumn('timezone', 'text', (c) => c.notNull())
    .addColumn('prompt', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('schedules_channel_idx').on('schedules').column('channel_id').execute();
  await db.schema.createIndex('schedules_org_idx').on('schedules').column('org_id').execute();

  await db.schema
    .createTable('schedule_runs')
    .addColumn('schedule_id', 'text', (c) => c.notNull().references('schedules.id').onDelete('cascade'))
    // ISO-8601 UTC: sorts as it reads, so max(fire_time) is the latest firing.
    .addColumn('fire_time', 'text', (c) => c.notNull())
    // started | skipped | failed
    .addColumn('status', 'text', (c) => c.notNull())
    // The session the firing started (or posted its refusal in), once known.
    .addColumn('thread', 'text')
    .addColumn('detail', 'text')
    // The scheduler instance that won the claim.
    .addColumn('claimed_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('schedule_runs_pk', ['schedule_id', 'fire_time'])
    .addCheckConstraint('schedule_runs_status', sql`status in ('started', 'skipped', 'failed')`)
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('schedule_runs').execute();
  await db.schema.dropTable('schedules').execute();
}
