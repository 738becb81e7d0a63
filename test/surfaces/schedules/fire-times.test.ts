import { describe, expect, it } from 'vitest';
import { isTagboxError } from '../../../src/errors.js';
import { compileCron, dueFireTimes, nextFireTime, OMITTED_COUNT_BOUND, validateTimezone } from '../../../src/surfaces/schedules/fire-times.js';
import { planFirings } from '../../../src/surfaces/schedules/missed-firings.js';

const iso = (d: Date | null) => d?.toISOString() ?? null;
const times = (cron: string, timezone: string, after: string, n: number): string[] => {
  const compiled = compileCron(cron, timezone);
  const out: string[] = [];
  for (let t = nextFireTime(compiled, new Date(after)); t && out.length < n; t = nextFireTime(compiled, t)) out.push(t.toISOString());
  return out;
};

/** The message of the invalid-input error fn throws (exit 2), or a failure naming what it did instead. */
function invalidMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (isTagboxError(error) && error.exitCode === 2) return error.message;
    throw error;
  }
  throw new Error('expected an invalid-input error, got none');
}

describe('fire times', () => {
  // Europe/Paris: CET (UTC+1) in winter, CEST (UTC+2) from 2026-03-29 02:00 to 2026-10-25 03:00.
  it.each([
    ['weekdays at 9, winter', '0 9 * * 1-5', 'Europe/Paris', '2026-01-09T12:00:00Z', ['2026-01-12T08:00:00.000Z', '2026-01-13T08:00:00.000Z']],
    ['weekdays at 9, summer', '0 9 * * MON-FRI', 'Europe/Paris', '2026-07-03T12:00:00Z', ['2026-07-06T07:00:00.000Z', '2026-07-07T07:00:00.000Z']],
    ['9:00 local across spring forward', '0 9 * * *', 'Europe/Paris', '2026-03-28T00:00:00Z', ['2026-03-28T08:00:00.000Z', '2026-03-29T07:00:00.000Z']],
    ['9:00 local across fall back', '0 9 * * *', 'Europe/Paris', '2026-10-24T00:00:00Z', ['2026-10-24T07:00:00.000Z', '2026-10-25T08:00:00.000Z']],
    // 02:30 does not exist on 2026-03-29: a fixed time runs when the clock has jumped (03:00 CEST), once.
    ['fixed time in the spring-forward gap', '30 2 * * *', 'Europe/Paris', '2026-03-28T00:00:00Z', ['2026-03-28T01:30:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z']],
    // Interval expressions skip the times in the gap (02:00 and 02:30 local).
    ['interval across the spring-forward gap', '*/30 * * * *', 'Europe/Paris', '2026-03-29T00:00:00Z', ['2026-03-29T00:30:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-29T01:30:00.000Z']],
    // 02:30 occurs twice on 2026-10-25: a fixed time runs once, at the first (CEST) occurrence.
    ['fixed time repeated at fall back', '30 2 * * *', 'Europe/Paris', '2026-10-24T00:00:00Z', ['2026-10-24T00:30:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']],
    // An interval expression runs on both occurrences of the repeated hour.
    ['interval through the repeated hour', '30 * * * *', 'Europe/Paris', '2026-10-25T00:00:00Z', ['2026-10-25T00:30:00.000Z', '2026-10-25T01:30:00.000Z', '2026-10-25T02:30:00.000Z']],
    ['UTC default-style zone', '15 */6 * * *', 'UTC', '2026-05-01T00:00:00Z', ['2026-05-01T00:15:00.000Z', '2026-05-01T06:15:00.000Z']],
    ['nickname', '@daily', 'Europe/Paris', '2026-01-01T12:00:00Z', ['2026-01-01T23:00:00.000Z', '2026-01-02T23:00:00.000Z']],
    ['29 February only', '0 0 29 2 *', 'UTC', '2026-03-01T00:00:00Z', ['2028-02-29T00:00:00.000Z']],
  ])('%s: %s in %s', (_name, cron, zone, after, expected) => {
    expect(times(cron, zone, after, expected.length)).toEqual(expected);
  });

  it('normalises whitespace and keeps the zone as given', () => {
    const compiled = compileCron('  0   9 * *\t1-5 ', ' Europe/Paris ');
    expect(compiled.cron).toBe('0 9 * * 1-5');
    expect(compiled.timezone).toBe('Europe/Paris');
  });

  it.each([
    ['61 * * * *', /cron: expected five fields .*"61 \* \* \* \*" is not valid \(Invalid value for minute: 61\)/],
    ['* * * * * *', /cron: expected five fields.*is not valid/],
    ['0 9 * *', /cron: expected five fields.*is not valid/],
    ['hello', /cron: expected five fields.*"hello" is not valid/],
    ['*/0 * * * *', /cron: .*illegal stepping/],
    ['0 25 * * *', /cron: .*hour/],
    ['', /cron: expected five fields.*got nothing/],
    ['0 0 30 2 *', /cron: "0 0 30 2 \*" never fires/],
    ['x'.repeat(201), /cron: expected five fields.*got 201 characters/],
  ])('refuses the expression %j, naming the field and what is expected', (cron, message) => {
    expect(invalidMessage(() => compileCron(cron, 'UTC'))).toMatch(message);
  });

  it.each(['Mars/Base', 'Europe/Pariss', '+02:00', 'UTC+2', '', ' ', 'Europe/Paris; rm -rf /', '../../etc/localtime'])('refuses the time zone %j', (zone) => {
    expect(invalidMessage(() => validateTimezone(zone))).toBe(`timezone: expected an IANA time zone such as "Europe/Paris" or "UTC", got "${zone}"`);
    expect(invalidMessage(() => compileCron('0 9 * * *', zone))).toMatch(/^timezone: /);
  });

  it('names the fields as the caller calls them (the CLI: --cron, --timezone)', () => {
    expect(invalidMessage(() => compileCron('nope', 'UTC', { cron: '--cron', timezone: '--timezone' }))).toMatch(/^--cron: /);
    expect(invalidMessage(() => compileCron('0 9 * * *', 'Nowhere/Land', { cron: '--cron', timezone: '--timezone' }))).toMatch(/^--timezone: /);
  });
});

describe('due fire times in (after, until]', () => {
  const hourly = compileCron('0 * * * *', 'UTC');
  const minutely = compileCron('* * * * *', 'UTC');

  it('excludes `after` and includes `until`', () => {
    const due = dueFireTimes(hourly, new Date('2030-01-01T01:00:00Z'), new Date('2030-01-01T03:00:00Z'), 100);
    expect(due.times.map(iso)).toEqual(['2030-01-01T02:00:00.000Z', '2030-01-01T03:00:00.000Z']);
    expect(due.omitted).toBe(0);
    expect(dueFireTimes(hourly, new Date('2030-01-01T01:00:00Z'), new Date('2030-01-01T01:59:59.999Z'), 100).times).toEqual([]);
    expect(dueFireTimes(hourly, new Date('2030-01-01T03:00:00Z'), new Date('2030-01-01T01:00:00Z'), 100).times).toEqual([]);
  });

  it('keeps the latest `max` and counts the rest exactly while few', () => {
    const due = dueFireTimes(minutely, new Date('2030-01-01T00:00:00Z'), new Date('2030-01-01T02:30:00Z'), 100);
    expect(due.times).toHaveLength(100);
    expect(iso(due.times[0]!)).toBe('2030-01-01T00:51:00.000Z');
    expect(iso(due.times[99]!)).toBe('2030-01-01T02:30:00.000Z');
    expect(due).toMatchObject({ omitted: 50, omittedAtLeast: false });
  });

  it('bounds the count of a very long interval', () => {
    const due = dueFireTimes(minutely, new Date('2030-01-01T00:00:00Z'), new Date('2030-03-01T00:00:00Z'), 100);
    expect(due.times).toHaveLength(100);
    expect(iso(due.times[99]!)).toBe('2030-03-01T00:00:00.000Z');
    expect(due).toMatchObject({ omitted: OMITTED_COUNT_BOUND, omittedAtLeast: true });
  });
});

describe('which missed firings run', () => {
  const hourly = compileCron('0 * * * *', 'UTC');
  const after = new Date('2030-01-01T00:00:00Z');
  const grace = 600_000;

  it('runs only the latest fire time when it is within the grace; the older ones are skipped', () => {
    const plan = planFirings(hourly, after, new Date('2030-01-01T05:05:00Z'), grace, 100);
    expect(iso(plan.run!)).toBe('2030-01-01T05:00:00.000Z');
    expect(plan.skipped.map((s) => iso(s.fireTime))).toEqual(['2030-01-01T01:00:00.000Z', '2030-01-01T02:00:00.000Z', '2030-01-01T03:00:00.000Z', '2030-01-01T04:00:00.000Z']);
    expect(plan.skipped[0]!.detail).toMatch(/^missed: 14700 s late, beyond the grace of 600 s$/);
  });

  it('runs nothing when even the latest is beyond the grace', () => {
    const plan = planFirings(hourly, after, new Date('2030-01-01T05:20:00Z'), grace, 100);
    expect(plan.run).toBeUndefined();
    expect(plan.skipped).toHaveLength(5);
    expect(plan.skipped[4]!.detail).toBe('missed: 1200 s late, beyond the grace of 600 s');
  });

  it('calls an older fire time still within the grace superseded, not run', () => {
    const plan = planFirings(compileCron('* * * * *', 'UTC'), after, new Date('2030-01-01T00:03:00Z'), grace, 100);
    expect(iso(plan.run!)).toBe('2030-01-01T00:03:00.000Z');
    expect(plan.skipped.map((s) => s.detail)).toEqual([
      'superseded by the firing at 2030-01-01T00:03:00.000Z (no catch-up bursts)',
      'superseded by the firing at 2030-01-01T00:03:00.000Z (no catch-up bursts)',
    ]);
  });

  it('puts the count of unrecorded firings on the oldest recorded one', () => {
    const plan = planFirings(compileCron('* * * * *', 'UTC'), after, new Date('2030-01-01T03:00:00Z'), grace, 100);
    expect(plan.run).toBeDefined();
    expect(plan.skipped).toHaveLength(99);
    expect(plan.skipped[0]!.detail).toContain('; 80 earlier firing(s) after 2030-01-01T00:00:00.000Z were skipped too, not recorded one by one');
  });
});
