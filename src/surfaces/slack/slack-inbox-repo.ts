import type { Kysely } from 'kysely';
import type { Database } from '../../store/tables.js';
import { newId, nowIso } from '../../util/ids.js';

/**
 * Every Slack delivery worth processing is recorded here before it is
 * acknowledged. Unique on the event id (Slack's retries) and on the message's
 * (channel, ts) (a tag in a thread arrives as `app_mention` and as `message`):
 * a second delivery of either inserts nothing and is dropped. A delivery whose
 * processing a crash interrupted is still `pending`, and is processed after the
 * restart (the session layer's dedupe key makes a second attempt harmless).
 */
export interface InboxEntry {
  id: string;
  workspaceId: string;
  eventId: string;
  messageKey: string | undefined;
  payload: unknown;
  receivedAt: string;
}

export async function recordDelivery(
  db: Kysely<Database>,
  input: { workspaceId: string; eventId: string; messageKey?: string; payload: unknown },
): Promise<InboxEntry | undefined> {
  const entry = { id: newId(), workspace_id: input.workspaceId, event_id: input.eventId, message_key: input.messageKey ?? null, payload: JSON.stringify(input.payload), status: 'pending', outcome: null, received_at: nowIso(), done_at: null };
  const result = await db.insertInto('slack_inbox').values(entry).onConflict((oc) => oc.doNothing()).executeTakeFirst();
  if (Number(result.numInsertedOrUpdatedRows ?? 0) === 0) return undefined;
  return { id: entry.id, workspaceId: input.workspaceId, eventId: input.eventId, messageKey: input.messageKey, payload: input.payload, receivedAt: entry.received_at };
}

export async function finishDelivery(db: Kysely<Database>, id: string, status: 'done' | 'failed', outcome: string): Promise<void> {
  await db.updateTable('slack_inbox').set({ status, outcome: outcome.slice(0, 500), done_at: nowIso() }).where('id', '=', id).execute();
}

/** Deliveries received before `before` and never finished (a crash), oldest first. */
export async function pendingDeliveries(db: Kysely<Database>, workspaceId: string, before: string, limit = 100): Promise<InboxEntry[]> {
  const rows = await db
    .selectFrom('slack_inbox')
    .selectAll()
    .where('workspace_id', '=', workspaceId)
    .where('status', '=', 'pending')
    .where('received_at', '<', before)
    .orderBy('received_at')
    .limit(limit)
    .execute();
  return rows.map((r) => ({ id: r.id, workspaceId: r.workspace_id, eventId: r.event_id, messageKey: r.message_key ?? undefined, payload: JSON.parse(r.payload) as unknown, receivedAt: r.received_at }));
}

/** Finished deliveries older than `before` are forgotten (Slack retries within minutes, not days). */
export async function pruneDeliveries(db: Kysely<Database>, before: string): Promise<void> {
  await db.deleteFrom('slack_inbox').where('status', '!=', 'pending').where('received_at', '<', before).execute();
}
