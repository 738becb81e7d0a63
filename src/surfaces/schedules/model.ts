/**
 * Schedules in DESIGN.md's vocabulary: a cron-timed prompt posted into a
 * channel by its creator, and the record of each firing. Rows stay inside
 * the *-repo.ts files of this folder.
 */
export interface Schedule {
  id: string;
  orgId: string;
  channelId: string;
  /** The member who created it: each firing is as if they had typed the prompt. */
  createdBy: string;
  cron: string;
  timezone: string;
  prompt: string;
  createdAt: string;
}

export type ScheduleRunStatus = 'started' | 'skipped' | 'failed';

export interface ScheduleRun {
  scheduleId: string;
  /** ISO-8601 UTC: the fire time this firing stands for (not when it ran). */
  fireTime: string;
  status: ScheduleRunStatus;
  /** The session of the thread it started (or posted its refusal in). */
  thread?: string;
  detail?: string;
  /** The scheduler instance that claimed it. */
  claimedBy: string;
  createdAt: string;
}
