import { Cron } from 'croner';
import { invalidInput } from '../../errors.js';

/**
 * When a schedule fires: pure, no I/O, on croner. Expressions are classic
 * five-field cron (minute precision: a schedule starts agent sessions, so no
 * seconds field) or croner's nicknames (@hourly, @daily, ...), read in an IANA
 * time zone. Daylight-saving changes follow croner (as Vixie cron): a fixed
 * time that falls in the spring-forward gap runs when the clock has jumped, a
 * fixed time that occurs twice in autumn runs once; interval expressions skip
 * times in the gap and run on both occurrences of a repeated time.
 */
export const DEFAULT_TIMEZONE = 'UTC';
export const MAX_CRON_LENGTH = 200;
const CRON_EXPECTED = 'expected five fields "minute hour day-of-month month day-of-week" (e.g. "0 9 * * 1-5") or @hourly, @daily, @weekly, @monthly, @yearly';

/** A validated expression in its zone, ready to enumerate. */
export interface CompiledCron {
  readonly cron: string;
  readonly timezone: string;
  readonly job: Cron;
}

/** `field` names the input in messages: `cron` for the API, `--cron` for the CLI. */
export function validateTimezone(timezone: string, field = 'timezone'): string {
  const zone = timezone.trim();
  // Intl also takes offsets such as "+02:00" on newer Node versions: they have no DST rules, so ask for a name.
  const named = /^[A-Za-z][A-Za-z0-9_+\-/]{0,99}$/.test(zone);
  if (!named || !isKnownZone(zone)) {
    throw invalidInput(`${field}: expected an IANA time zone such as "Europe/Paris" or "UTC", got "${timezone}"`);
  }
  return zone;
}

/** Parses the expression in the zone (validated first); throws invalidInput naming the field. */
export function compileCron(cron: string, timezone: string, fields: { cron?: string; timezone?: string } = {}): CompiledCron {
  const zone = validateTimezone(timezone, fields.timezone);
  const field = fields.cron ?? 'cron';
  const expression = cron.trim().replace(/\s+/g, ' ');
  if (expression.length === 0 || expression.length > MAX_CRON_LENGTH) throw invalidInput(`${field}: ${CRON_EXPECTED}; got ${expression.length === 0 ? 'nothing' : `${cron.length} characters`}`);
  let job: Cron;
  try {
    job = new Cron(expression, { timezone: zone, mode: '5-part', paused: true });
  } catch (error) {
    throw invalidInput(`${field}: ${CRON_EXPECTED}; "${expression}" is not valid (${cronReason(error)})`);
  }
  // An expression such as "0 0 30 2 *" parses but never comes.
  if (job.nextRun(new Date()) === null) throw invalidInput(`${field}: "${expression}" never fires (no such date)`);
  return { cron: expression, timezone: zone, job };
}

/** The first fire time strictly after `after`, or null when there is none. */
export function nextFireTime(compiled: CompiledCron, after: Date): Date | null {
  return compiled.job.nextRun(after);
}

export interface DueFireTimes {
  /** The latest fire times in (after, until], at most `max`, oldest first. */
  times: Date[];
  /** How many earlier ones in (after, until] were left out of `times`. */
  omitted: number;
  /** True when counting the omitted ones stopped at its bound: there were at least `omitted`. */
  omittedAtLeast: boolean;
}

/** Past this many, left-out fire times are not counted one by one any more. */
export const OMITTED_COUNT_BOUND = 1000;

/**
 * The fire times in (after, until], bounded: however long the interval, at
 * most `max` of them (the latest), and a bounded count of the rest.
 */
export function dueFireTimes(compiled: CompiledCron, after: Date, until: Date, max: number): DueFireTimes {
  if (max < 1) throw new RangeError('dueFireTimes: max must be at least 1');
  const none: DueFireTimes = { times: [], omitted: 0, omittedAtLeast: false };
  if (until.getTime() <= after.getTime()) return none;
  // The common case, walked forward: nothing or a few due since the last firing.
  const forward: Date[] = [];
  for (let t = compiled.job.nextRun(after); t && t.getTime() <= until.getTime(); t = compiled.job.nextRun(t)) {
    forward.push(t);
    if (forward.length > max) break;
  }
  if (forward.length <= max) return { times: forward, omitted: 0, omittedAtLeast: false };
  // Many due (a long outage): the latest `max`, walked back from `until`; a run
  // exactly at `until` counts, which croner includes when asked from within its second.
  const latest = compiled.job
    .previousRuns(max, new Date(until.getTime() + 1))
    .filter((t) => t.getTime() > after.getTime() && t.getTime() <= until.getTime())
    .reverse();
  const first = latest[0]!;
  let omitted = 0;
  for (let t = compiled.job.nextRun(after); t && t.getTime() < first.getTime() && omitted < OMITTED_COUNT_BOUND; t = compiled.job.nextRun(t)) omitted += 1;
  return { times: latest, omitted, omittedAtLeast: omitted >= OMITTED_COUNT_BOUND };
}

function isKnownZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** croner's message without its class prefix ("CronPattern: Invalid value for minute: 61"). */
function cronReason(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(/^Cron\w*:\s*/, '');
}
