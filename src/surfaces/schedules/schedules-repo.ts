import type { Kysely, Selectable } from 'kysely';
import type { Database, SchedulesTable } from '../../store/tables.js';
import { newId, nowIso } from '../../util/ids.js';
import type { Schedule } from './model.js';

/** Schedules: create, read, list by channel or org, delete (hard: its runs go with it, the audit log keeps them). */
export async function createSchedule(db: Kysely<Database>, input: Omit<Schedule, 'id' | 'createdAt'>): Promise<Schedule> {
  const row = {
    id: newId(),
    org_id: input.orgId,
    channel_id: input.channelId,
    created_by: input.createdBy,
    cron: input.cron,
    timezone: input.timezone,
    prompt: input.prompt,
    created_at: nowIso(),
  };
  await db.insertInto('schedules').values(row).execute();
  return toSchedule(row);
}

export async function getSchedule(db: Kysely<Database>, id: string): Promise<Schedule | undefined> {
  const row = await db.selectFrom('schedules').selectAll().where('id', '=', id).executeTakeFirst();
  return row && toSchedule(row);
}

export async function listSchedulesByChannel(db: Kysely<Database>, channelId: string): Promise<Schedule[]> {
  return (await db.selectFrom('schedules').selectAll().where('channel_id', '=', channelId).orderBy('created_at').orderBy('id').execute()).map(toSchedule);
}

export async function listSchedulesByOrg(db: Kysely<Database>, orgId: string): Promise<Schedule[]> {
  return (await db.selectFrom('schedules').selectAll().where('org_id', '=', orgId).orderBy('created_at').orderBy('id').execute()).map(toSchedule);
}

/**
 * Every schedule with the fire time of its latest recorded run (the scheduler's
 * one query per pass). A correlated max() per schedule reads one entry of the
 * (schedule_id, fire_time) primary key each, however many runs have piled up.
 */
export async function listSchedulesWithLastRun(db: Kysely<Database>): Promise<{ schedule: Schedule; lastFireTime: string | undefined }[]> {
  const rows = await db
    .selectFrom('schedules')
    .selectAll('schedules')
    .select((eb) =>
      eb
        .selectFrom('schedule_runs')
        .select((inner) => inner.fn.max('schedule_runs.fire_time').as('m'))
        .whereRef('schedule_runs.schedule_id', '=', 'schedules.id')
        .as('last_fire_time'),
    )
    .orderBy('schedules.created_at')
    .orderBy('schedules.id')
    .execute();
  return rows.map(({ last_fire_time, ...row }) => ({ schedule: toSchedule(row), lastFireTime: last_fire_time ?? undefined }));
}

export async function deleteSchedule(db: Kysely<Database>, id: string): Promise<boolean> {
  const result = await db.deleteFrom('schedules').where('id', '=', id).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

function toSchedule(row: Selectable<SchedulesTable>): Schedule {
  return {
    id: row.id,
    orgId: row.org_id,
    channelId: row.channel_id,
    createdBy: row.created_by,
    cron: row.cron,
    timezone: row.timezone,
    prompt: row.prompt,
    createdAt: row.created_at,
  };
}
