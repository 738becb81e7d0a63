import { sql, type Kysely } from 'kysely';

/**
 * The product layer (DESIGN.md "Sessions and turns"): one session per thread,
 * its messages, its ordered event log, its turns and its engine state; the
 * server instances that hold turns and sandboxes; channel membership for the
 * web workspace; and the agent settings of channels and the org.
 *
 * What must hold across processes and replicas is a constraint here, not a
 * lock in memory: one session per (workspace, place, thread key); one event
 * per (session, seq); one running turn per session (a partial unique index);
 * one message per surface delivery (the dedupe key).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('server_instances')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('host', 'text', (c) => c.notNull())
    .addColumn('pid', 'integer', (c) => c.notNull())
    .addColumn('started_at', 'text', (c) => c.notNull())
    .addColumn('heartbeat_at', 'text', (c) => c.notNull())
    .addColumn('stopped_at', 'text')
    .execute();

  await db.schema
    .createTable('sessions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
    .addColumn('workspace_id', 'text', (c) => c.notNull().references('workspaces.id').onDelete('cascade'))
    // 'channel:<channel id>' | 'dm:<member id>'
    .addColumn('place', 'text', (c) => c.notNull())
    .addColumn('channel_id', 'text', (c) => c.references('channels.id').onDelete('cascade'))
    .addColumn('dm_member_id', 'text', (c) => c.references('members.id').onDelete('cascade'))
    .addColumn('thread_key', 'text', (c) => c.notNull())
    // 'agent' (channels) | 'member' (DMs): who the agent acts as; never changes with the author.
    .addColumn('identity', 'text', (c) => c.notNull())
    .addColumn('engine', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text')
    // The last event's seq: events are numbered by bumping it (one row lock per append).
    .addColumn('event_seq', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('turn_seq', 'integer', (c) => c.notNull().defaultTo(0))
    // The server instance whose sandbox this session holds (counts against the org's cap), or null.
    .addColumn('sandbox_holder', 'text')
    .addColumn('sandbox_since', 'text')
    .addColumn('last_activity_at', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addUniqueConstraint('sessions_thread_unique', ['workspace_id', 'place', 'thread_key'])
    .execute();
  await db.schema.createIndex('sessions_org_sandbox_idx').on('sessions').columns(['org_id', 'sandbox_holder']).execute();

  await db.schema
    .createTable('turns')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('session_id', 'text', (c) => c.notNull().references('sessions.id').onDelete('cascade'))
    .addColumn('org_id', 'text', (c) => c.notNull())
    .addColumn('seq', 'integer', (c) => c.notNull())
    // queued | running | done | cancelled | interrupted | failed
    .addColumn('status', 'text', (c) => c.notNull())
    // message | schedule
    .addColumn('trigger', 'text', (c) => c.notNull())
    .addColumn('triggered_by', 'text')
    .addColumn('holder', 'text')
    .addColumn('cancel_requested_by', 'text')
    .addColumn('detail', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('started_at', 'text')
    .addColumn('ended_at', 'text')
    .addUniqueConstraint('turns_session_seq_unique', ['session_id', 'seq'])
    .addCheckConstraint('turns_status', sql`status in ('queued', 'running', 'done', 'cancelled', 'interrupted', 'failed')`)
    .execute();
  // One running turn per session, whichever process or replica claims it.
  await db.schema.createIndex('turns_one_running').on('turns').column('session_id').unique().where(sql.ref('status'), '=', sql.lit('running')).execute();
  await db.schema.createIndex('turns_status_idx').on('turns').columns(['status', 'created_at']).execute();

  await db.schema
    .createTable('messages')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('session_id', 'text', (c) => c.notNull().references('sessions.id').onDelete('cascade'))
    // member | agent | system
    .addColumn('author_kind', 'text', (c) => c.notNull())
    .addColumn('author_id', 'text')
    .addColumn('author_name', 'text')
    .addColumn('text', 'text', (c) => c.notNull())
    // The surface's own id for what it delivered: a retry or duplicate delivery is one message.
    .addColumn('dedupe_key', 'text', (c) => c.unique())
    .addColumn('turn_id', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('messages_session_idx').on('messages').columns(['session_id', 'created_at']).execute();
  await db.schema.createIndex('messages_turn_idx').on('messages').column('turn_id').execute();

  await db.schema
    .createTable('session_events')
    .addColumn('session_id', 'text', (c) => c.notNull().references('sessions.id').onDelete('cascade'))
    .addColumn('seq', 'integer', (c) => c.notNull())
    // message | progress | notice | status | usage | error | done
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('turn_id', 'text')
    .addColumn('data', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('session_events_pk', ['session_id', 'seq'])
    .execute();

  await db.schema
    .createTable('engine_states')
    .addColumn('session_id', 'text', (c) => c.notNull().references('sessions.id').onDelete('cascade'))
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('engine', 'text', (c) => c.notNull())
    // base64 of a tar.gz of the engine's state directory (portable across dialects).
    .addColumn('data', 'text', (c) => c.notNull())
    .addColumn('bytes', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('engine_states_pk', ['session_id', 'version'])
    .execute();

  await db.schema
    .createTable('channel_members')
    .addColumn('channel_id', 'text', (c) => c.notNull().references('channels.id').onDelete('cascade'))
    .addColumn('member_id', 'text', (c) => c.notNull().references('members.id').onDelete('cascade'))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('channel_members_pk', ['channel_id', 'member_id'])
    .execute();

  await db.schema.alterTable('channels').addColumn('engine', 'text').execute();
  await db.schema.alterTable('channels').addColumn('instructions', 'text').execute();
  await db.schema.alterTable('orgs').addColumn('instructions', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['channel_members', 'engine_states', 'session_events', 'messages', 'turns', 'sessions', 'server_instances']) {
    await db.schema.dropTable(table).execute();
  }
  await db.schema.alterTable('channels').dropColumn('engine').execute();
  await db.schema.alterTable('channels').dropColumn('instructions').execute();
  await db.schema.alterTable('orgs').dropColumn('instructions').execute();
}
