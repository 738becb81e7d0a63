import { actorFields, type ActorRef } from '../../access/actor.js';
import type { AuditLog } from '../../audit/log.js';
import type { ControlStore } from '../../store/database.js';
import { withWriteTransaction } from '../../store/write-transaction.js';
import type { Schedule } from './model.js';
import { createSchedule, deleteSchedule } from './schedules-repo.js';

/**
 * Creating and deleting schedules: the row and its admin-change event in one
 * write transaction, so the record commits with the change or not at all.
 * Who may do it is decided by the caller (server/routes/schedules.ts); the
 * prompt itself is not copied into the audit log, only its size.
 */
export async function addSchedule(store: ControlStore, audit: AuditLog, actor: ActorRef, input: Omit<Schedule, 'id' | 'createdAt'>): Promise<Schedule> {
  return withWriteTransaction(store, undefined, async (db) => {
    const schedule = await createSchedule(db, input);
    await audit.appendIn(db, [
      {
        type: 'admin-change',
        ...actorFields(actor),
        outcome: 'ok',
        org: schedule.orgId,
        action: 'schedule.create',
        target: `schedule:${schedule.id}`,
        channel: schedule.channelId,
        cron: schedule.cron,
        timezone: schedule.timezone,
        promptBytes: Buffer.byteLength(schedule.prompt, 'utf8'),
      },
    ]);
    return schedule;
  });
}

/** False when it was gone already (nothing recorded). */
export async function removeSchedule(store: ControlStore, audit: AuditLog, actor: ActorRef, schedule: Schedule): Promise<boolean> {
  return withWriteTransaction(store, undefined, async (db) => {
    if (!(await deleteSchedule(db, schedule.id))) return false;
    await audit.appendIn(db, [
      { type: 'admin-change', ...actorFields(actor), outcome: 'ok', org: schedule.orgId, action: 'schedule.delete', target: `schedule:${schedule.id}`, channel: schedule.channelId, createdBy: schedule.createdBy },
    ]);
    return true;
  });
}
