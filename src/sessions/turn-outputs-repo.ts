import type { Kysely } from 'kysely';
import type { Database } from '../store/tables.js';
import { newId } from '../util/ids.js';

/**
 * What turns left outside the sandbox (migration 0014): branches pushed and
 * pull requests opened, as the Agent Proxy saw them succeed. One row per
 * turn and thing: a repeated report is recorded (and told) once.
 */
export type TurnOutput =
  | { kind: 'pull-request'; repository: string; number: number; url: string; title?: string; turn: string; at: string }
  | { kind: 'branch'; repository: string; ref: string; turn: string; at: string };

export type NewTurnOutput = { kind: 'pull-request'; repository: string; number: number; url: string; title?: string } | { kind: 'branch'; repository: string; ref: string };

let lastTime = 0;
/** Strictly increasing in this process (a push's refs are recorded in the same millisecond), so oldest-first is the order recorded. */
function nextTime(): string {
  lastTime = Math.max(Date.now(), lastTime + 1);
  return new Date(lastTime).toISOString();
}

/** Records it; false when this turn had already recorded it. */
export async function recordTurnOutput(db: Kysely<Database>, sessionId: string, turnId: string, output: NewTurnOutput): Promise<boolean> {
  const inserted = await db
    .insertInto('turn_outputs')
    .values({
      id: newId(),
      session_id: sessionId,
      turn_id: turnId,
      kind: output.kind,
      repository: output.repository,
      ref: output.kind === 'pull-request' ? String(output.number) : output.ref,
      url: output.kind === 'pull-request' ? output.url : null,
      title: output.kind === 'pull-request' ? (output.title ?? null) : null,
      created_at: nextTime(),
    })
    .onConflict((oc) => oc.columns(['turn_id', 'kind', 'repository', 'ref']).doNothing())
    .executeTakeFirst();
  return Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0;
}

/** A session's outputs, oldest first; of one turn with `turnId`. */
export async function turnOutputs(db: Kysely<Database>, sessionId: string, turnId?: string): Promise<TurnOutput[]> {
  let q = db.selectFrom('turn_outputs').selectAll().where('session_id', '=', sessionId);
  if (turnId) q = q.where('turn_id', '=', turnId);
  const rows = await q.orderBy('created_at').orderBy('id').execute();
  return rows.map((r) =>
    r.kind === 'pull-request'
      ? { kind: 'pull-request', repository: r.repository, number: Number(r.ref), url: r.url ?? '', ...(r.title ? { title: r.title } : {}), turn: r.turn_id, at: r.created_at }
      : { kind: 'branch', repository: r.repository, ref: r.ref, turn: r.turn_id, at: r.created_at },
  );
}
