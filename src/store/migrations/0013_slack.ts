import type { Kysely } from 'kysely';

/**
 * Slack workspaces (docs/SLACK.md). The tokens stay in the vault: a workspace
 * row names them, and only the Agent Proxy opens them, on the listener it
 * keeps for the workspace's Web API calls.
 *   slack_workspaces  how a connected Slack team is reached (mode, vault names, the bot's user id)
 *   slack_inbox       every event delivery, recorded before it is acknowledged: unique on the
 *                     event id and on (channel, ts), so a retry or a duplicate is processed once,
 *                     and a delivery a crash interrupted is processed after the restart
 *   slack_threads     where a session's thread lives in Slack, and how far its events were posted
 *   slack_posts       what was posted for a thread, claimed before posting, so that a restart
 *                     neither loses nor repeats a reply (its key rides on the message's metadata)
 *   slack_users       when a member's Slack profile was last read (users.info), and whether deleted
 *   slack_files       files shared with a message to the agent, fetched through the proxy (the bot
 *                     token injected there), copied into the session's sandbox at each turn
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('slack_workspaces')
    .addColumn('workspace_id', 'text', (c) => c.primaryKey().references('workspaces.id').onDelete('cascade'))
    // 'socket' | 'events'
    .addColumn('mode', 'text', (c) => c.notNull())
    .addColumn('bot_token_secret', 'text', (c) => c.notNull())
    .addColumn('app_token_secret', 'text')
    .addColumn('bot_user_id', 'text')
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('slack_inbox')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull().references('workspaces.id').onDelete('cascade'))
    .addColumn('event_id', 'text', (c) => c.notNull())
    // `<channel>:<ts>` of the message the event is about; null for events that carry none.
    .addColumn('message_key', 'text')
    // The event's JSON (capped at the edge).
    .addColumn('payload', 'text', (c) => c.notNull())
    // 'pending' | 'done' | 'failed'
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('outcome', 'text')
    .addColumn('received_at', 'text', (c) => c.notNull())
    .addColumn('done_at', 'text')
    .addUniqueConstraint('slack_inbox_event_unique', ['workspace_id', 'event_id'])
    .addUniqueConstraint('slack_inbox_message_unique', ['workspace_id', 'message_key'])
    .execute();
  await db.schema.createIndex('slack_inbox_pending_idx').on('slack_inbox').columns(['status', 'received_at']).execute();

  await db.schema
    .createTable('slack_threads')
    .addColumn('session_id', 'text', (c) => c.primaryKey().references('sessions.id').onDelete('cascade'))
    .addColumn('workspace_id', 'text', (c) => c.notNull().references('workspaces.id').onDelete('cascade'))
    .addColumn('channel', 'text', (c) => c.notNull())
    .addColumn('thread_ts', 'text', (c) => c.notNull())
    // The last session event (seq) whose effect reached Slack.
    .addColumn('delivered_seq', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addUniqueConstraint('slack_threads_place_unique', ['workspace_id', 'channel', 'thread_ts'])
    .execute();

  await db.schema
    .createTable('slack_posts')
    .addColumn('workspace_id', 'text', (c) => c.notNull().references('workspaces.id').onDelete('cascade'))
    // e.g. 'answer:<turn>', 'notice:<session>:<seq>', 'refusal:<channel>:<ts>'
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('channel', 'text', (c) => c.notNull())
    .addColumn('ts', 'text')
    // 'posting' (claimed; a restart looks for the key in the thread before posting again) | 'posted'
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('slack_posts_pk', ['workspace_id', 'key'])
    .execute();

  await db.schema
    .createTable('slack_users')
    .addColumn('member_id', 'text', (c) => c.primaryKey().references('members.id').onDelete('cascade'))
    .addColumn('deleted', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('is_bot', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('refreshed_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('slack_files')
    .addColumn('workspace_id', 'text', (c) => c.notNull().references('workspaces.id').onDelete('cascade'))
    .addColumn('message_key', 'text', (c) => c.notNull())
    .addColumn('file_id', 'text', (c) => c.notNull())
    // Set once the message's invocation is accepted.
    .addColumn('session_id', 'text', (c) => c.references('sessions.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('size', 'integer', (c) => c.notNull())
    // base64 (portable across dialects)
    .addColumn('content', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('slack_files_pk', ['workspace_id', 'message_key', 'file_id'])
    .execute();
  await db.schema.createIndex('slack_files_session_idx').on('slack_files').column('session_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['slack_files', 'slack_users', 'slack_posts', 'slack_threads', 'slack_inbox', 'slack_workspaces']) {
    await db.schema.dropTable(table).execute();
  }
}
