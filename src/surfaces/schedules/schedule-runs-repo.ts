import type { Kysely, Selectable } from 'kysely';
import type { Database, ScheduleRunsTable } from '../../store/tables.js';
import { nowIso } from '../../util/ids.js';
import type { ScheduleRun, ScheduleRunStatus } from './model.js';

/**
 * The record of firings. Inserting a run is claiming it: the primary key
 * (schedule, fire time) lets exactly one insert win, whichever process or
 * replica tries, and the losers learn it from the row count — no error, no
 * lock, the same on SQLite and Postgres.
 */
export async function claimRun(
  db: Kysely<Database>,
  run: { scheduleId: string; fireTime: string; status: ScheduleRunStatus; detail?: string; claimedBy: string },
): Promise<boolean> {
  const result = await db
    .insertInto('schedule_runs')
    .values({
      schedule_id: run.scheduleId,
      fire_time: run.fireTime,
      status: run.status,
      thread: null,
      detail: run.detail ?? null,
      claimed_by: run.claimedBy,
      created_at: nowIso(),
    })
    .onConflict((oc) => oc.columns(['schedule_id', 'fire_time']).doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0n) > 0;
}

/** What became of a claimed firing; only its claimer writes this. */
export async function finishRun(
  db: Kysely<Database>,
  key: { scheduleId: string; fireTime: string },
  outcome: { status: ScheduleRunStatus; thread?: string; detail?: string },
): Promise<void> {
  await db
    .updateTable('schedule_runs')
    .set({ status: outcome.status, thread: outcome.thread ?? null, detail: outcome.detail ?? null })
    .where('schedule_id', '=', key.scheduleId)
    .where('fire_time', '=', key.fireTime)
    .execute();
}

/** Newest first. */
export async function listRuns(db: Kysely<Database>, scheduleId: string, limit: number): Promise<ScheduleRun[]> {
  const rows = await db.selectFrom('schedule_runs').selectAll().where('schedule_id', '=', scheduleId).orderBy('fire_time', 'desc').limit(limit).execute();
  return rows.map(toRun);
}

function toRun(row: Selectable<ScheduleRunsTable>): ScheduleRun {
  return {
    scheduleId: row.schedule_id,
    fireTime: row.fire_time,
    status: row.status as ScheduleRunStatus,
    ...(row.thread ? { thread: row.thread } : {}),
    ...(row.detail ? { detail: row.detail } : {}),
    claimedBy: row.claimed_by,
    createdAt: row.created_at,
  };
}
