import { sql, type Kysely, type Selectable } from 'kysely';
import { isUniqueViolation } from '../store/constraint-errors.js';
import type { Database, TurnsTable } from '../store/tables.js';
import { newId, nowIso } from '../util/ids.js';
import { turnMessages } from './messages-repo.js';
import type { Message, Turn, TurnStatus } from './model.js';

/**
 * Turns: one at a time per session, across processes — the partial unique
 * index `turns_one_running` admits one `running` row per session, so a claim
 * is an UPDATE that either wins or fails at the constraint. Messages that
 * arrive while a turn runs join the session's one queued turn.
 */

/** The session's queued turn (locked for this transaction on Postgres), or a new one. */
export async function queueTurn(
  db: Kysely<Database>,
  input: { sessionId: string; orgId: string; trigger: Turn['trigger']; triggeredBy?: string; postgres: boolean },
): Promise<{ turn: Turn; created: boolean }> {
  let q = db.selectFrom('turns').selectAll().where('session_id', '=', input.sessionId).where('status', '=', 'queued').orderBy('seq').limit(1);
  // A concurrent claim of this very row waits for us (or we for it, and then see it running).
  if (input.postgres) q = q.forUpdate();
  const queued = await q.executeTakeFirst();
  if (queued) return { turn: toTurn(queued), created: false };
  const bumped = await db
    .updateTable('sessions')
    .set((eb) => ({ turn_seq: eb('turn_seq', '+', 1) }))
    .where('id', '=', input.sessionId)
    .returning('turn_seq')
    .executeTakeFirstOrThrow();
  const row: Selectable<TurnsTable> = {
    id: newId(),
    session_id: input.sessionId,
    org_id: input.orgId,
    seq: Number(bumped.turn_seq),
    status: 'queued',
    trigger: input.trigger,
    triggered_by: input.triggeredBy ?? null,
    holder: null,
    cancel_requested_by: null,
    detail: null,
    created_at: nowIso(),
    started_at: null,
    ended_at: null,
  };
  await db.insertInto('turns').values(row).execute();
  return { turn: toTurn(row), created: true };
}

export async function getTurn(db: Kysely<Database>, id: string): Promise<Turn | undefined> {
  const row = await db.selectFrom('turns').selectAll().where('id', '=', id).executeTakeFirst();
  return row && toTurn(row);
}

/** Queued turns, oldest first: the oldest of each session is the one that may run next. */
export async function queuedTurns(db: Kysely<Database>, limit = 200): Promise<Turn[]> {
  const rows = await db.selectFrom('turns').selectAll().where('status', '=', 'queued').orderBy('created_at').orderBy('seq').limit(limit).execute();
  return rows.map(toTurn);
}

export async function runningTurnOf(db: Kysely<Database>, sessionId: string): Promise<Turn | undefined> {
  const row = await db.selectFrom('turns').selectAll().where('session_id', '=', sessionId).where('status', '=', 'running').executeTakeFirst();
  return row && toTurn(row);
}

export async function openTurnsOf(db: Kysely<Database>, sessionId: string): Promise<Turn[]> {
  const rows = await db.selectFrom('turns').selectAll().where('session_id', '=', sessionId).where('status', 'in', ['queued', 'running']).orderBy('seq').execute();
  return rows.map(toTurn);
}

/**
 * Takes a queued turn for `holder`. False when someone else took it, or when
 * its session already has a running turn (the unique index says no).
 */
export async function claimTurn(db: Kysely<Database>, turnId: string, holder: string): Promise<boolean> {
  try {
    const result = await db
      .updateTable('turns')
      .set({ status: 'running', holder, started_at: nowIso() })
      .where('id', '=', turnId)
      .where('status', '=', 'queued')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  } catch (error) {
    if (isUniqueViolation(error)) return false;
    throw error;
  }
}

/** Ends a running turn once; false if it was no longer running as this holder's (recovered as interrupted meanwhile). */
export async function finishTurn(db: Kysely<Database>, turnId: string, holder: string, status: TurnStatus, detail?: string): Promise<boolean> {
  const result = await db
    .updateTable('turns')
    .set({ status, ended_at: nowIso(), detail: detail ?? null })
    .where('id', '=', turnId)
    .where('status', '=', 'running')
    .where('holder', '=', holder)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** A queued turn that will never run (cancelled before it started). */
export async function dropQueuedTurn(db: Kysely<Database>, turnId: string, status: TurnStatus, detail?: string): Promise<boolean> {
  const result = await db
    .updateTable('turns')
    .set({ status, ended_at: nowIso(), detail: detail ?? null })
    .where('id', '=', turnId)
    .where('status', '=', 'queued')
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export async function requestCancel(db: Kysely<Database>, turnId: string, by: string): Promise<boolean> {
  const result = await db
    .updateTable('turns')
    .set({ cancel_requested_by: by })
    .where('id', '=', turnId)
    .where('status', '=', 'running')
    .where('cancel_requested_by', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Cancel requests for turns this holder runs (read on a poll: another replica may have taken the request). */
export async function cancelRequests(db: Kysely<Database>, holder: string): Promise<Array<{ id: string; by: string }>> {
  const rows = await db
    .selectFrom('turns')
    .select(['id', 'cancel_requested_by'])
    .where('holder', '=', holder)
    .where('status', '=', 'running')
    .where('cancel_requested_by', 'is not', null)
    .execute();
  return rows.map((r) => ({ id: r.id, by: r.cancel_requested_by! }));
}

/** Running turns of holders that are gone. */
export async function runningTurnsHeldBy(db: Kysely<Database>, holders: string[]): Promise<Turn[]> {
  if (holders.length === 0) return [];
  const rows = await db.selectFrom('turns').selectAll().where('status', '=', 'running').where('holder', 'in', holders).execute();
  return rows.map(toTurn);
}

/** How many queued turns of the org were queued before this one (for "queued: 3 ahead"). */
export async function queuedAhead(db: Kysely<Database>, orgId: string, turn: Turn): Promise<number> {
  const row = await db
    .selectFrom('turns')
    .select(sql<number>`count(*)`.as('n'))
    .where('org_id', '=', orgId)
    .where('status', '=', 'queued')
    .where('created_at', '<', turn.createdAt)
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

function toTurn(row: Selectable<TurnsTable>): Turn {
  return {
    id: row.id,
    sessionId: row.session_id,
    orgId: row.org_id,
    seq: Number(row.seq),
    status: row.status as TurnStatus,
    trigger: row.trigger as Turn['trigger'],
    triggeredBy: row.triggered_by ?? undefined,
    holder: row.holder ?? undefined,
    cancelRequestedBy: row.cancel_requested_by ?? undefined,
    createdAt: row.created_at,
  };
}

/**
 * Moves the session's queued turn into its running one (an engine that takes
 * messages mid-turn asked for them): its messages now belong to `into`, and
 * it ends as `done`, "joined". Undefined when nothing was queued.
 */
export async function absorbQueuedTurn(db: Kysely<Database>, sessionId: string, into: string, postgres: boolean): Promise<{ turn: Turn; messages: Message[] } | undefined> {
  let q = db.selectFrom('turns').selectAll().where('session_id', '=', sessionId).where('status', '=', 'queued').orderBy('seq').limit(1);
  if (postgres) q = q.forUpdate();
  const queued = await q.executeTakeFirst();
  if (!queued) return undefined;
  const ended = await db
    .updateTable('turns')
    .set({ status: 'done', ended_at: nowIso(), detail: `joined ${into}` })
    .where('id', '=', queued.id)
    .where('status', '=', 'queued')
    .executeTakeFirst();
  if (Number(ended.numUpdatedRows) !== 1) return undefined;
  const messages = await turnMessages(db, queued.id);
  await db.updateTable('messages').set({ turn_id: into }).where('turn_id', '=', queued.id).execute();
  return { turn: toTurn(queued), messages };
}
