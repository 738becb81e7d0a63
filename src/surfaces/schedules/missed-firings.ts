import { dueFireTimes, type CompiledCron } from './fire-times.js';

/**
 * Which of a schedule's due fire times run, and which are recorded as skipped
 * (pure). Of everything due since the last recorded firing, only the latest
 * may run, and only if it is at most `graceMs` old: a schedule never runs a
 * burst to catch up, and a firing long past (Tagbox was down) is not run late.
 * Every other due fire time is skipped, one row each up to `maxRows` in all;
 * beyond that the oldest skipped row carries a count of the rest.
 */
export interface FiringPlan {
  /** The fire time to run now, if any. */
  run?: Date;
  /** Fire times to record as skipped, oldest first, each with why. */
  skipped: { fireTime: Date; detail: string }[];
}

export function planFirings(compiled: CompiledCron, after: Date, now: Date, graceMs: number, maxRows: number): FiringPlan {
  // Two rows at least: the one that runs, and one to carry the count of the rest.
  if (maxRows < 2) throw new RangeError('planFirings: maxRows must be at least 2');
  const due = dueFireTimes(compiled, after, now, maxRows);
  const latest = due.times[due.times.length - 1];
  if (!latest) return { skipped: [] };
  const run = now.getTime() - latest.getTime() <= graceMs ? latest : undefined;
  const skipped = (run ? due.times.slice(0, -1) : due.times).map((fireTime) => {
    const lateMs = now.getTime() - fireTime.getTime();
    const detail =
      lateMs > graceMs
        ? `missed: ${Math.round(lateMs / 1000)} s late, beyond the grace of ${Math.round(graceMs / 1000)} s`
        : `superseded by the firing at ${latest.toISOString()} (no catch-up bursts)`;
    return { fireTime, detail };
  });
  const first = skipped[0];
  if (first && due.omitted > 0) {
    first.detail += `; ${due.omittedAtLeast ? 'at least ' : ''}${due.omitted} earlier firing(s) after ${after.toISOString()} were skipped too, not recorded one by one`;
  }
  return run ? { run, skipped } : { skipped };
}
