import type { Kysely, Selectable } from 'kysely';
import type { Database, SessionsTable } from '../store/tables.js';
import { newId, nowIso } from '../util/ids.js';
import { parsePlaceKey, placeKey, type Identity, type Session, type SessionPlace } from './model.js';

/** Sessions: one per (workspace, place, thread key). */
export async function findSession(db: Kysely<Database>, workspaceId: string, place: SessionPlace, threadKey: string): Promise<Session | undefined> {
  const row = await db
    .selectFrom('sessions')
    .selectAll()
    .where('workspace_id', '=', workspaceId)
    .where('place', '=', placeKey(place))
    .where('thread_key', '=', threadKey)
    .executeTakeFirst();
  return row && toSession(row);
}

export async function getSession(db: Kysely<Database>, id: string): Promise<Session | undefined> {
  const row = await db.selectFrom('sessions').selectAll().where('id', '=', id).executeTakeFirst();
  return row && toSession(row);
}

export interface NewSession {
  orgId: string;
  workspaceId: string;
  place: SessionPlace;
  /** Undefined: the thread is Tagbox's own (web): its key is the session id. */
  threadKey?: string;
  identity: Identity;
  engine: string;
  createdBy?: string;
}

/**
 * Finds the thread's session or creates it. Two deliveries racing for a new
 * thread key meet at the unique constraint: the loser reads the winner's row.
 */
export async function findOrCreateSession(db: Kysely<Database>, input: NewSession): Promise<{ session: Session; created: boolean }> {
  if (input.threadKey !== undefined) {
    const existing = await findSession(db, input.workspaceId, input.place, input.threadKey);
    if (existing) return { session: existing, created: false };
  }
  const id = newId();
  const now = nowIso();
  const row: Selectable<SessionsTable> = {
    id,
    org_id: input.orgId,
    workspace_id: input.workspaceId,
    place: placeKey(input.place),
    channel_id: input.place.kind === 'channel' ? input.place.channelId : null,
    dm_member_id: input.place.kind === 'dm' ? input.place.memberId : null,
    thread_key: input.threadKey ?? id,
    identity: input.identity,
    engine: input.engine,
    created_by: input.createdBy ?? null,
    event_seq: 0,
    turn_seq: 0,
    sandbox_holder: null,
    sandbox_since: null,
    last_activity_at: now,
    created_at: now,
  };
  const inserted = await db
    .insertInto('sessions')
    .values(row)
    .onConflict((oc) => oc.columns(['workspace_id', 'place', 'thread_key']).doNothing())
    .executeTakeFirst();
  if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 1) return { session: toSession(row), created: true };
  return { session: (await findSession(db, input.workspaceId, input.place, input.threadKey!))!, created: false };
}

export async function touchSession(db: Kysely<Database>, id: string): Promise<void> {
  await db.updateTable('sessions').set({ last_activity_at: nowIso() }).where('id', '=', id).execute();
}

export function toSession(row: Selectable<SessionsTable>): Session {
  return {
    id: row.id,
    orgId: row.org_id,
    workspaceId: row.workspace_id,
    place: parsePlaceKey(row.place),
    threadKey: row.thread_key,
    identity: row.identity as Identity,
    engine: row.engine,
    createdBy: row.created_by ?? undefined,
    sandboxHolder: row.sandbox_holder ?? undefined,
    lastActivityAt: row.last_activity_at,
    createdAt: row.created_at,
  };
}
