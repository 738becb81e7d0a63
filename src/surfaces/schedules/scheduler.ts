import { isForeignKeyViolation } from '../../store/constraint-errors.js';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { mayUseChannel } from '../../access/channel-access.js';
import { getMember } from '../../access/members-repo.js';
import { getChannel } from '../../access/workspaces-repo.js';
import type { AuditEventInput } from '../../audit/events.js';
import type { AuditLog } from '../../audit/log.js';
import { describeError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { InvocationPort } from '../../sessions/invocation.js';
import type { ControlStore } from '../../store/database.js';
import { withWriteTransaction } from '../../store/write-transaction.js';
import { compileCron, nextFireTime, type CompiledCron } from './fire-times.js';
import { planFirings } from './missed-firings.js';
import type { Schedule, ScheduleRunStatus } from './model.js';
import { claimRun, finishRun } from './schedule-runs-repo.js';
import { listSchedulesWithLastRun } from './schedules-repo.js';

export interface SchedulerOptions {
  store: ControlStore;
  audit: AuditLog;
  /** The session layer: each firing is one Invocation, exactly like a typed request. */
  port: InvocationPort;
  logger: Logger;
  /** config.schedules.graceSeconds: how late a missed firing may still run. */
  graceSeconds: number;
  /** Between passes (default 1000). */
  intervalMs?: number;
  /** Recorded as `claimed_by` (default host:pid:random). */
  instanceId?: string;
  /** Rows one schedule may get in one pass, the run included (default 100); the rest are counted. */
  maxRowsPerPass?: number;
}

/** The outcome of a firing, in the audit log: `refused` is the session layer saying no (stored as `failed`). */
type RunOutcome = { status: ScheduleRunStatus; audit: 'started' | 'failed' | 'refused'; thread?: string; detail?: string };

const MAX_DETAIL = 500;

/**
 * Fires schedules. Every pass (about once a second, or `tick(now)` in tests)
 * it reads each schedule with its latest recorded firing, works out what is
 * due since then (or since its creation), and claims it by inserting the
 * firing's row: the row's primary key lets one insert win across processes
 * and replicas, so each firing happens exactly once. Only the latest due fire
 * time within the grace runs; older ones are recorded as skipped in the same
 * transaction (with their audit events), so nothing runs twice or in a burst.
 * The winner then hands the session layer an Invocation and records the
 * outcome. No single error stops it: a schedule that fails is logged and the
 * pass goes on; a pass that fails is retried on the next.
 */
export class Scheduler {
  readonly instanceId: string;
  private readonly intervalMs: number;
  private readonly graceMs: number;
  private readonly maxRows: number;
  private readonly compiled = new Map<string, CompiledCron>();
  /** Per schedule: the next fire time after its latest firing, so a pass with nothing due costs no cron walk. */
  private readonly nextDue = new Map<string, { after: string; next: number | undefined }>();
  private readonly firing = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private currentPass: Promise<void> | undefined;
  private failing = false;
  /** Schedules whose claim failed: warned once, not once a pass, until they work again. */
  private readonly troubled = new Set<string>();

  constructor(private readonly options: SchedulerOptions) {
    this.instanceId = options.instanceId ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    this.intervalMs = options.intervalMs ?? 1000;
    // A firing a pass notices a tick or two late is not "missed", even with a grace of 0.
    this.graceMs = Math.max(options.graceSeconds * 1000, 2 * this.intervalMs);
    this.maxRows = Math.max(2, options.maxRowsPerPass ?? 100);
  }

  /** Passes start now (catching up on what was missed while nothing ran) and repeat every intervalMs. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.scheduleNext(0);
  }

  /** No new passes; waits for the current one and for firings under way. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.currentPass;
    await Promise.all([...this.firing]);
  }

  /** One pass at `now`, resolved when its firings have been handed over and recorded. */
  async tick(now: Date = new Date()): Promise<void> {
    await Promise.all(await this.claimDue(now));
  }

  private scheduleNext(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.currentPass = this.backgroundPass().finally(() => {
        this.currentPass = undefined;
        if (this.running) this.scheduleNext(this.intervalMs);
      });
    }, delayMs);
    // The server's listeners keep the process alive; the scheduler alone should not.
    this.timer.unref();
  }

  /** A timer's pass does not wait for its firings: a slow session layer must not hold up other schedules. */
  private async backgroundPass(): Promise<void> {
    try {
      for (const fired of await this.claimDue(new Date())) {
        this.firing.add(fired);
        void fired.finally(() => this.firing.delete(fired));
      }
      if (this.failing) this.options.logger.info('scheduler: passes work again');
      this.failing = false;
    } catch (error) {
      // Once per outage, not once a second.
      if (!this.failing) this.options.logger.error({ err: error }, 'scheduler: a pass failed; retrying every interval');
      this.failing = true;
    }
  }

  /** Claims what is due; returns the firings started (they never reject). */
  private async claimDue(now: Date): Promise<Promise<void>[]> {
    const rows = await listSchedulesWithLastRun(this.options.store.db);
    this.forgetAllBut(new Set(rows.map((r) => r.schedule.id)));
    const fired: Promise<void>[] = [];
    for (const { schedule, lastFireTime } of rows) {
      try {
        const fireTime = await this.claim(schedule, lastFireTime ?? schedule.createdAt, now);
        if (fireTime) fired.push(this.fire(schedule, fireTime));
        this.troubled.delete(schedule.id);
      } catch (error) {
        if (isForeignKeyViolation(error)) continue; // deleted since the pass read it: nothing to fire
        if (!this.troubled.has(schedule.id)) this.options.logger.warn({ err: error, schedule: schedule.id }, 'scheduler: could not claim a schedule\'s firings; every pass tries again');
        this.troubled.add(schedule.id);
      }
    }
    return fired;
  }

  /** Records what is due after `after` in one transaction; returns the fire time this instance won the right to run. */
  private async claim(schedule: Schedule, after: string, now: Date): Promise<string | undefined> {
    const compiled = this.compiledOf(schedule);
    if (!this.isDue(schedule.id, compiled, after, now)) return undefined;
    const plan = planFirings(compiled, new Date(after), now, this.graceMs, this.maxRows);
    const claimedBy = this.instanceId;
    return withWriteTransaction(this.options.store, undefined, async (trx) => {
      const events: AuditEventInput[] = [];
      for (const { fireTime, detail } of plan.skipped) {
        const iso = fireTime.toISOString();
        // Another instance that recorded it first also audited it.
        if (await claimRun(trx, { scheduleId: schedule.id, fireTime: iso, status: 'skipped', detail, claimedBy })) {
          events.push(runEvent(schedule, iso, 'skipped', { detail }));
        }
      }
      const run = plan.run?.toISOString();
      const won = run !== undefined && (await claimRun(trx, { scheduleId: schedule.id, fireTime: run, status: 'started', claimedBy }));
      await this.options.audit.appendIn(trx, events);
      return won ? run : undefined;
    });
  }

  /** Hands the firing to the session layer and records what became of it; never rejects. */
  private async fire(schedule: Schedule, fireTime: string): Promise<void> {
    let outcome: RunOutcome;
    try {
      outcome = await this.invoke(schedule, fireTime);
    } catch (error) {
      outcome = { status: 'failed', audit: 'failed', detail: `the session layer failed: ${describeError(error)}` };
    }
    if (outcome.detail) outcome.detail = outcome.detail.slice(0, MAX_DETAIL);
    if (outcome.status !== 'started') this.options.logger.warn({ schedule: schedule.id, fireTime, detail: outcome.detail }, 'scheduler: a firing did not start');
    try {
      await withWriteTransaction(this.options.store, undefined, async (trx) => {
        await finishRun(trx, { scheduleId: schedule.id, fireTime }, outcome);
        await this.options.audit.appendIn(trx, [runEvent(schedule, fireTime, outcome.audit, outcome)]);
      });
    } catch (error) {
      this.options.logger.error({ err: error, schedule: schedule.id, fireTime }, 'scheduler: could not record a firing\'s outcome');
    }
  }

  private async invoke(schedule: Schedule, fireTime: string): Promise<RunOutcome> {
    const db = this.options.store.db;
    const channel = await getChannel(db, schedule.channelId);
    if (!channel) return { status: 'failed', audit: 'failed', detail: `its channel ${schedule.channelId} is gone` };
    const creator = await getMember(db, schedule.createdBy);
    if (!creator) return { status: 'failed', audit: 'failed', detail: `its creator, member ${schedule.createdBy}, is gone` };
    // The prompt posts as its creator: someone who has left a private channel no longer posts there.
    if (!(await mayUseChannel(db, creator, channel))) {
      return { status: 'failed', audit: 'refused', detail: `refused: its creator, member ${creator.id}, may no longer use channel ${channel.id}` };
    }
    const result = await this.options.port.invoke({
      workspaceId: channel.workspaceId,
      place: { kind: 'channel', channelId: channel.id },
      memberId: schedule.createdBy,
      text: schedule.prompt,
      trigger: 'schedule',
      dedupeKey: `schedule:${schedule.id}:${fireTime}`,
      schedule: { id: schedule.id, fireTime },
    });
    if (result.status === 'accepted') return { status: 'started', audit: 'started', thread: result.thread };
    return { status: 'failed', audit: 'refused', ...(result.thread ? { thread: result.thread } : {}), detail: `refused: ${result.reason}` };
  }

  /** Stored expressions were validated on creation; one that no longer compiles fails every pass, logged by claimDue. */
  private compiledOf(schedule: Schedule): CompiledCron {
    const known = this.compiled.get(schedule.id);
    if (known) return known;
    const compiled = compileCron(schedule.cron, schedule.timezone);
    this.compiled.set(schedule.id, compiled);
    return compiled;
  }

  private isDue(id: string, compiled: CompiledCron, after: string, now: Date): boolean {
    let cached = this.nextDue.get(id);
    if (cached?.after !== after) {
      cached = { after, next: nextFireTime(compiled, new Date(after))?.getTime() };
      this.nextDue.set(id, cached);
    }
    return cached.next !== undefined && cached.next <= now.getTime();
  }

  private forgetAllBut(ids: Set<string>): void {
    for (const map of [this.compiled, this.nextDue]) for (const id of map.keys()) if (!ids.has(id)) map.delete(id);
    for (const id of this.troubled) if (!ids.has(id)) this.troubled.delete(id);
  }
}

/** The one `schedule-run` audit event of a firing. */
function runEvent(schedule: Schedule, fireTime: string, outcome: 'started' | 'skipped' | 'failed' | 'refused', about: { thread?: string; detail?: string }): AuditEventInput {
  return {
    type: 'schedule-run',
    outcome,
    actor: schedule.createdBy,
    org: schedule.orgId,
    schedule: schedule.id,
    channel: schedule.channelId,
    fireTime,
    ...(about.thread ? { session: about.thread } : {}),
    ...(about.detail ? { reason: about.detail } : {}),
  };
}
