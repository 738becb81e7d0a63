import type { Kysely, Selectable } from 'kysely';
import type { Database, SessionEventsTable } from '../store/tables.js';
import { nowIso } from '../util/ids.js';
import type { SessionEvent, SessionEventType } from './model.js';

/**
 * A session's durable, ordered event log: what the web app and surfaces replay
 * from any point (SSE Last-Event-ID). Each append bumps the session's counter
 * in the same statement that reads it (UPDATE ... RETURNING), so numbers are
 * dense and ordered per session whichever process appends; the row lock (or
 * SQLite's write lock) serialises appenders of one session only.
 */
export async function appendEvent(
  db: Kysely<Database>,
  sessionId: string,
  type: SessionEventType,
  data: Record<string, unknown>,
  turnId?: string,
): Promise<SessionEvent> {
  const bumped = await db
    .updateTable('sessions')
    .set((eb) => ({ event_seq: eb('event_seq', '+', 1) }))
    .where('id', '=', sessionId)
    .returning('event_seq')
    .executeTakeFirstOrThrow();
  const ts = nowIso();
  const seq = Number(bumped.event_seq);
  await db
    .insertInto('session_events')
    .values({ session_id: sessionId, seq, type, turn_id: turnId ?? null, data: JSON.stringify(data), created_at: ts })
    .execute();
  return { seq, type, turn: turnId, data, ts };
}

/** Events after `afterSeq`, oldest first. */
export async function readEvents(db: Kysely<Database>, sessionId: string, afterSeq: number, limit = 500): Promise<SessionEvent[]> {
  const rows = await db
    .selectFrom('session_events')
    .selectAll()
    .where('session_id', '=', sessionId)
    .where('seq', '>', afterSeq)
    .orderBy('seq', 'asc')
    .limit(limit)
    .execute();
  return rows.map(toEvent);
}

/** One turn's events up to `uptoSeq`, oldest first (a reader resuming mid-turn rebuilds what it had shown). */
export async function readTurnEvents(db: Kysely<Database>, sessionId: string, turnId: string, uptoSeq: number): Promise<SessionEvent[]> {
  const rows = await db
    .selectFrom('session_events')
    .selectAll()
    .where('session_id', '=', sessionId)
    .where('turn_id', '=', turnId)
    .where('seq', '<=', uptoSeq)
    .orderBy('seq', 'asc')
    .execute();
  return rows.map(toEvent);
}

/** The event at `seq`, if any. */
export async function readEvent(db: Kysely<Database>, sessionId: string, seq: number): Promise<SessionEvent | undefined> {
  const row = await db.selectFrom('session_events').selectAll().where('session_id', '=', sessionId).where('seq', '=', seq).executeTakeFirst();
  return row && toEvent(row);
}

function toEvent(r: Selectable<SessionEventsTable>): SessionEvent {
  return { seq: Number(r.seq), type: r.type as SessionEventType, turn: r.turn_id ?? undefined, data: JSON.parse(r.data) as Record<string, unknown>, ts: r.created_at };
}
