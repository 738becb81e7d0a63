import { sql, type Kysely } from 'kysely';

/**
 * Model usage metered at the proxy, and the budgets it is held to
 * (DESIGN.md "Model access and usage"). One `usage_events` row per model
 * response the proxy read usage from, attributed by the listener it came
 * through (never by anything the request said): the org pays for channel
 * work (`channel_id` set), the member for their DM work (`member_id` set).
 *
 * Counts and costs are bigints (cost in integer micro-USD): sums over a
 * month must not overflow. Usage rows are an account, not a view of live
 * rows: only the org is a foreign key, so a deleted channel, member or
 * session keeps what it spent. The indexes serve the proxy's budget sums
 * (org, channel or DM member, over a period) and the API's aggregation.
 *
 * A budget is unique per (scope, period, unit): `PUT /budgets` upserts it.
 * `limit` is tokens or micro-USD, by its unit.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('usage_events')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
    .addColumn('session_id', 'text', (c) => c.notNull())
    // 'org' (channel work) | 'member' (DM work)
    .addColumn('payer_kind', 'text', (c) => c.notNull())
    .addColumn('payer_id', 'text', (c) => c.notNull())
    .addColumn('channel_id', 'text')
    // The DM's member (DM work only).
    .addColumn('member_id', 'text')
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('input_tokens', 'bigint', (c) => c.notNull())
    .addColumn('output_tokens', 'bigint', (c) => c.notNull())
    .addColumn('cache_read_tokens', 'bigint', (c) => c.notNull())
    .addColumn('cache_creation_tokens', 'bigint', (c) => c.notNull())
    // micro-USD, at the prices in force when it was recorded.
    .addColumn('cost', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addCheckConstraint('usage_events_payer', sql`(payer_kind = 'org' and channel_id is not null and member_id is null) or (payer_kind = 'member' and member_id is not null and channel_id is null)`)
    .addCheckConstraint('usage_events_counts', sql`input_tokens >= 0 and output_tokens >= 0 and cache_read_tokens >= 0 and cache_creation_tokens >= 0 and cost >= 0`)
    .execute();
  await db.schema.createIndex('usage_events_org_time_idx').on('usage_events').columns(['org_id', 'created_at']).execute();
  await db.schema.createIndex('usage_events_channel_time_idx').on('usage_events').columns(['channel_id', 'created_at']).execute();
  await db.schema.createIndex('usage_events_member_time_idx').on('usage_events').columns(['member_id', 'created_at']).execute();

  await db.schema
    .createTable('budgets')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
    // 'org' | 'channel' | 'member'; scope_id is the org's, channel's or member's id.
    .addColumn('scope_kind', 'text', (c) => c.notNull())
    .addColumn('scope_id', 'text', (c) => c.notNull())
    // 'day' | 'month' (UTC)
    .addColumn('period', 'text', (c) => c.notNull())
    // 'tokens' | 'cost'
    .addColumn('unit', 'text', (c) => c.notNull())
    .addColumn('limit', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('updated_by', 'text', (c) => c.notNull())
    .addUniqueConstraint('budgets_scope_unique', ['scope_kind', 'scope_id', 'period', 'unit'])
    .addCheckConstraint('budgets_kind', sql`scope_kind in ('org', 'channel', 'member') and period in ('day', 'month') and unit in ('tokens', 'cost')`)
    .addCheckConstraint('budgets_limit', sql`${sql.ref('limit')} >= 0`)
    .execute();
  await db.schema.createIndex('budgets_org_idx').on('budgets').column('org_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('budgets').execute();
  await db.schema.dropTable('usage_events').execute();
}
