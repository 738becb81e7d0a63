import type { Kysely, Selectable } from 'kysely';
import type { Database, SlackThreadsTable } from '../../store/tables.js';
import { nowIso } from '../../util/ids.js';
import type { SlackThreadRef } from './model.js';

/** A session's Slack thread, with how far its event log has reached Slack. */
export interface SlackThread extends SlackThreadRef {
  /** The last session event (seq) whose effect reached Slack. */
  deliveredSeq: number;
}

/**
 * Binds a session to its Slack thread. False when the session already has
 * one, or the thread already belongs to another session (the first wins).
 * `deliveredSeq` starts where the caller says: a thread bound mid-session
 * need not replay what Slack already shows.
 */
export async function bindThread(db: Kysely<Database>, ref: SlackThreadRef & { deliveredSeq?: number }): Promise<boolean> {
  const result = await db
    .insertInto('slack_threads')
    .values({
      session_id: ref.sessionId,
      workspace_id: ref.workspaceId,
      channel: ref.channel,
      thread_ts: ref.threadTs,
      delivered_seq: ref.deliveredSeq ?? 0,
      updated_at: nowIso(),
    })
    .onConflict((oc) => oc.doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
}

export async function threadOfSession(db: Kysely<Database>, sessionId: string): Promise<SlackThread | undefined> {
  const row = await db.selectFrom('slack_threads').selectAll().where('session_id', '=', sessionId).executeTakeFirst();
  return row && toThread(row);
}

/** The session whose thread is `threadTs` in `channel` (a reply in a thread the agent is in). */
export async function findThreadByTs(db: Kysely<Database>, workspaceId: string, channel: string, threadTs: string): Promise<SlackThread | undefined> {
  const row = await db
    .selectFrom('slack_threads')
    .selectAll()
    .where('workspace_id', '=', workspaceId)
    .where('channel', '=', channel)
    .where('thread_ts', '=', threadTs)
    .executeTakeFirst();
  return row && toThread(row);
}

/** Records that events up to `seq` reached Slack; never moves back. */
export async function advanceDelivered(db: Kysely<Database>, sessionId: string, seq: number): Promise<void> {
  await db.updateTable('slack_threads').set({ delivered_seq: seq, updated_at: nowIso() }).where('session_id', '=', sessionId).where('delivered_seq', '<', seq).execute();
}

/** Threads whose session has events not yet delivered, oldest change first. */
export async function threadsBehind(db: Kysely<Database>, limit = 500): Promise<SlackThread[]> {
  const rows = await db
    .selectFrom('slack_threads as t')
    .innerJoin('sessions as s', 's.id', 't.session_id')
    .selectAll('t')
    .whereRef('t.delivered_seq', '<', 's.event_seq')
    .orderBy('t.updated_at')
    .limit(limit)
    .execute();
  return rows.map(toThread);
}

/**
 * Sessions of Slack workspaces that a schedule started and that have no
 * thread yet: their thread root is for the poster to post. (A session that a
 * Slack message started is bound by the surface, under the message's ts.)
 */
export async function scheduledSessionsWithoutThread(db: Kysely<Database>, limit = 100): Promise<Array<{ sessionId: string; workspaceId: string; channelId: string }>> {
  const rows = await db
    .selectFrom('sessions as s')
    .innerJoin('workspaces as w', 'w.id', 's.workspace_id')
    .leftJoin('slack_threads as t', 't.session_id', 's.id')
    .select(['s.id', 's.workspace_id', 's.channel_id'])
    .where('w.kind', '=', 'slack')
    .where('t.session_id', 'is', null)
    .where('s.channel_id', 'is not', null)
    .where((eb) => eb.exists(eb.selectFrom('turns as u').select('u.id').whereRef('u.session_id', '=', 's.id').where('u.trigger', '=', 'schedule')))
    .orderBy('s.created_at')
    .limit(limit)
    .execute();
  return rows.map((r) => ({ sessionId: r.id, workspaceId: r.workspace_id, channelId: r.channel_id! }));
}

function toThread(row: Selectable<SlackThreadsTable>): SlackThread {
  return { sessionId: row.session_id, workspaceId: row.workspace_id, channel: row.channel, threadTs: row.thread_ts, deliveredSeq: Number(row.delivered_seq) };
}
