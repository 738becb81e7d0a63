import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addChannelMember, removeChannelMember } from '../../../src/access/channel-access.js';
import type { AuditEvent } from '../../../src/audit/events.js';
import type { AuditLog } from '../../../src/audit/log.js';
import { Scheduler, type SchedulerOptions } from '../../../src/surfaces/schedules/scheduler.js';
import { createWorld, type World } from '../../access/fixtures.js';
import { BACKENDS } from '../../helpers/backends.js';
import { at, RecordingPort, runsOf, scheduleAt, silentLogger, TickWorker } from './helpers.js';

const BASE = '2030-01-07T00:00:00.000Z';

async function scheduleRunEvents(audit: AuditLog): Promise<AuditEvent[]> {
  const events: AuditEvent[] = [];
  for await (const e of audit.query({ type: 'schedule-run' })) events.push(e);
  return events;
}

describe.each(BACKENDS)('the scheduler (%s)', (backend) => {
  let w: World;
  let port: RecordingPort;
  const schedulerFor = (options: Partial<SchedulerOptions> = {}) =>
    new Scheduler({ store: w.store, audit: w.audit, port, logger: silentLogger, graceSeconds: 600, ...options });

  beforeEach(async () => {
    w = await createWorld(backend);
    port = new RecordingPort();
  });
  afterEach(async () => w?.close());

  it('fires once per fire time, as the creator typing the prompt in a new thread of the channel', async () => {
    const s = await scheduleAt(w.store, { orgId: w.org.id, channelId: w.eng.id, createdBy: w.ada.id, cron: '*/5 * * * *', prompt: 'standup summary' }, BASE);
    const scheduler = schedulerFor();
    await scheduler.tick(at(BASE, 4));
    expect(port.calls).toHaveLength(0);
    await scheduler.tick(at(BASE, 5));
    await scheduler.tick(at(BASE, 5));
    await scheduler.tick(at(BASE, 9.9));
    expect(port.calls).toEqual([
      {
        workspaceId: w.ws1.id,
        place: { kind: 'channel', channelId: w.eng.id },
        memberId: w.ada.id,
        text: 'standup summary',
        trigger: 'schedule',
        dedupeKey: `schedule:${s.id}:2030-01-07T00:05:00.000Z`,
        schedule: { id: s.id, fireTime: '2030-01-07T00:05:00.000Z' },
      },
    ]);
    await scheduler.tick(at(BASE, 10));
    expect(port.calls.map((c) => c.schedule?.fireTime)).toEqual(['2030-01-07T00:05:00.000Z', '2030-01-07T00:10:00.000Z']);

    const runs = await runsOf(w.store, s.id);
    expect(runs.map((r) => [r.fire_time, r.status, r.thread, r.claimed_by])).toEqual([
      ['2030-01-07T00:05:00.000Z', 'started', 'thread-1', scheduler.instanceId],
      ['2030-01-07T00:10:00.000Z', 'started', 'thread-2', scheduler.instanceId],
    ]);
    const events = await scheduleRunEvents(w.audit);
    expect(events).toHaveLength(2);
    expect(events[0]).toMatchObject({ type: 'schedule-run', outcome: 'started', schedule: s.id, channel: w.eng.id, actor: w.ada.id, fireTime: '2030-01-07T00:05:00.000Z', session: 'thread-1' });
    expect((await w.audit.verify()).ok).toBe(true);
  });

  it('fires each firing exactly once in total when schedulers in three processes tick the same moments', async () => {
    const schedules = [];
    for (const [i, cron] of ['* * * * *', '*/2 * * * *', '* * * * *'].entries()) {
      schedules.push(await scheduleAt(w.store, { orgId: w.org.id, channelId: i === 1 ? w.random.id : w.eng.id, createdBy: w.ada.id, cron, prompt: `job ${i}` }, BASE));
    }
    const workers = [new TickWorker(w.backend.location, 'b'), new TickWorker(w.backend.location, 'c')];
    try {
      await Promise.all(workers.map((x) => x.ready()));
      const a = schedulerFor({ instanceId: 'a' });
      const rounds = 40;
      const keys: string[] = [];
      for (let minute = 1; minute <= rounds; minute++) {
        const now = at(BASE, minute);
        const before = port.calls.length;
        // Two passes of this process at once too (one connection), with the two other processes.
        const [, , ...theirs] = await Promise.all([a.tick(now), a.tick(now), ...workers.map((x) => x.tick(now))]);
        keys.push(...port.calls.slice(before).map((c) => c.dedupeKey!), ...theirs.flat());
      }
      const expected = rounds + rounds / 2 + rounds;
      expect(keys).toHaveLength(expected);
      expect(new Set(keys).size).toBe(expected);
      for (const s of schedules) {
        const runs = await runsOf(w.store, s.id);
        expect(runs.every((r) => r.status === 'started')).toBe(true);
        expect(runs).toHaveLength(s.cron === '*/2 * * * *' ? rounds / 2 : rounds);
      }
      const events = await scheduleRunEvents(w.audit);
      expect(events).toHaveLength(expected);
      expect(new Set(events.map((e) => `${String(e.schedule)}@${String(e.fireTime)}`)).size).toBe(expected);
      expect((await w.audit.verify()).ok).toBe(true);
    } finally {
      expect(await Promise.all(workers.map((x) => x.close()))).toEqual([0, 0]);
    }
  });

  it('after downtime runs only the latest missed firing within the grace and records the older ones as skipped', async () => {
    const s = await scheduleAt(w.store, { orgId: w.org.id, channelId: w.eng.id, createdBy: w.ada.id, cron: '0 * * * *', prompt: 'hourly' }, BASE);
    // A fresh instance, as after a restart: what ran before is only in the store.
    await schedulerFor().tick(at(BASE, 5 * 60 + 5));
    expect(port.calls.map((c) => c.schedule?.fireTime)).toEqual(['2030-01-07T05:00:00.000Z']);
    const runs = await runsOf(w.store, s.id);
    expect(runs.map((r) => [r.fire_time, r.status])).toEqual([
      ['2030-01-07T01:00:00.000Z', 'skipped'],
      ['2030-01-07T02:00:00.000Z', 'skipped'],
      ['2030-01-07T03:00:00.000Z', 'skipped'],
      ['2030-01-07T04:00:00.000Z', 'skipped'],
      ['2030-01-07T05:00:00.000Z', 'started'],
    ]);
    expect(runs[0]!.detail).toBe('missed: 14700 s late, beyond the grace of 600 s');
    // Another restart at the same moment finds nothing left to do.
    await schedulerFor().tick(at(BASE, 5 * 60 + 6));
    expect(port.calls).toHaveLength(1);
    const events = await scheduleRunEvents(w.audit);
    expect(events.map((e) => e.outcome)).toEqual(['skipped', 'skipped', 'skipped', 'skipped', 'started']);
  });

  it('records a missed firing beyond the grace as skipped and runs nothing until the next one', async () => {
    const s = await scheduleAt(w.store, { orgId: w.org.id, channelId: w.eng.id, createdBy: w.ada.id, cron: '0 * * * *', prompt: 'hourly' }, BASE);
    const scheduler = schedulerFor();
    await scheduler.tick(at(BASE, 2 * 60 + 20));
    expect(port.calls).toHaveLength(0);
    expect((await runsOf(w.store, s.id)).map((r) => [r.fire_time, r.status, r.detail])).toEqual([
      ['2030-01-07T01:00:00.000Z', 'skipped', 'missed: 4800 s late, beyond the grace of 600 s'],
      ['2030-01-07T02:00:00.000Z', 'skipped', 'missed: 1200 s late, beyond the grace of 600 s'],
    ]);
    await scheduler.tick(at(BASE, 3 * 60));
    expect(port.calls.map((c) => c.schedule?.fireTime)).toEqual(['2030-01-07T03:00:00.000Z']);
  });

  it('bounds what one pass records after a long outage, and summarises the rest', async () => {
    const s = await scheduleAt(w.store, { orgId: w.org.id, channelId: w.eng.id, createdBy: w.ada.id, cron: '* * * * *', prompt: 'every minute' }, BASE);
    const scheduler = schedulerFor({ maxRowsPerPass: 50 });
    await scheduler.tick(at(BASE, 3 * 24 * 60));
    await scheduler.tick(at(BASE, 3 * 24 * 60));
    expect(port.calls.map((c) => c.schedule?.fireTime)).toEqual(['2030-01-10T00:00:00.000Z']);
    const runs = await runsOf(w.store, s.id);
    expect(runs).toHaveLength(50);
    expect(runs.filter((r) => r.status === 'skipped')).toHaveLength(49);
    expect(runs[0]!.detail).toMatch(/at least 1000 earlier firing\(s\) after 2030-01-07T00:00:00.000Z were skipped too/);
    expect(await scheduleRunEvents(w.audit)).toHaveLength(50);
  });

  it('records a failing or refusing session layer and keeps firing the other schedules', async () => {
    const failing = await scheduleAt(w.store, { orgId: w.org.id, channelId: w.eng.id, createdBy: w.ada.id, cron: '0 9 * * *', prompt: 'fails' }, BASE);
    const refused = await scheduleAt(w.store, { orgId: w.org.id, channelId: w.eng.id, createdBy: w.bob.id, cron: '0 9 * * *', prompt: 'refused' }, BASE);
    const fine = await scheduleAt(w.store, { orgId: w.org.id, channelId: w.random.id, createdBy: w.ada.id, cron: '0 9 * * *', prompt: 'fine' }, BASE);
    port.answer = (invocation, n) => {
      if (invocation.text === 'fails') throw new Error('the database is on fire');
      if (invocation.text === 'refused') return { status: 'refused', thread: 'thread-refusal', reason: 'Bob may not invoke the agent here', message: 'm', visibility: 'thread' };
      return { status: 'accepted', thread: `thread-${n}`, message: 'm', turn: 't', duplicate: false };
    };
    const scheduler = schedulerFor();
    await scheduler.tick(at(BASE, 9 * 60));
    expect(port.calls.map((c) => c.text).sort()).toEqual(['fails', 'fine', 'refused']);
    expect((await runsOf(w.store, failing.id)).map((r) => [r.status, r.detail])).toEqual([['failed', 'the session layer failed: the database is on fire']]);
    expect((await runsOf(w.store, refused.id)).map((r) => [r.status, r.thread, r.detail])).toEqual([['failed', 'thread-refusal', 'refused: Bob may not invoke the agent here']]);
    expect((await runsOf(w.store, fine.id)).map((r) => r.status)).toEqual(['started']);
    const outcomes = Object.fromEntries((await scheduleRunEvents(w.audit)).map((e) => [String(e.schedule), e.outcome]));
    expect(outcomes).toEqual({ [failing.id]: 'failed', [refused.id]: 'refused', [fine.id]: 'started' });
    // A failure is that firing's, not the schedule's: the next day it fires again.
    port.answer = (_i, n) => ({ status: 'accepted', thread: `thread-${n}`, message: 'm', turn: 't', duplicate: false });
    await scheduler.tick(at(BASE, 33 * 60));
    expect((await runsOf(w.store, failing.id)).map((r) => r.status)).toEqual(['failed', 'started']);
  });

  it('records failed for a schedule whose creator is gone, and a deleted channel takes its schedules with it', async () => {
    const gone = await w.admin.createMember('test', { workspaceId: w.ws1.id, externalId: 'U9', displayName: 'Gone' });
    const orphan = await scheduleAt(w.store, { orgId: w.org.id, channelId: w.eng.id, createdBy: gone.id, cron: '0 9 * * *', prompt: 'orphan' }, BASE);
    const doomed = await scheduleAt(w.store, { orgId: w.org.id, channelId: w.random.id, createdBy: w.ada.id, cron: '0 9 * * *', prompt: 'doomed' }, BASE);
    const fine = await scheduleAt(w.store, { orgId: w.org.id, channelId: w.eng.id, createdBy: w.ada.id, cron: '0 9 * * *', prompt: 'fine' }, BASE);
    await w.store.db.deleteFrom('members').where('id', '=', gone.id).execute();
    await w.store.db.deleteFrom('channels').where('id', '=', w.random.id).execute();
    await schedulerFor().tick(at(BASE, 9 * 60));
    expect(port.calls.map((c) => c.text)).toEqual(['fine']);
    expect((await runsOf(w.store, orphan.id)).map((r) => [r.status, r.detail])).toEqual([['failed', `its creator, member ${gone.id}, is gone`]]);
    expect(await runsOf(w.store, doomed.id)).toEqual([]);
    expect(await w.store.db.selectFrom('schedules').select('id').where('id', '=', doomed.id).executeTakeFirst()).toBeUndefined();
    expect((await runsOf(w.store, fine.id)).map((r) => r.status)).toEqual(['started']);
  });

  it('refuses to post as a creator who has left the private channel', async () => {
    const insider = await w.admin.createMember('test', { workspaceId: w.ws2.id, externalId: 'U5', displayName: 'Insider', hasAccount: true });
    await addChannelMember(w.store.db, w.sales.id, insider.id);
    const s = await scheduleAt(w.store, { orgId: w.org.id, channelId: w.sales.id, createdBy: insider.id, cron: '0 9 * * *', prompt: 'pipeline report' }, BASE);
    const scheduler = schedulerFor();
    await scheduler.tick(at(BASE, 9 * 60));
    expect(port.calls.map((c) => c.text)).toEqual(['pipeline report']);

    await removeChannelMember(w.store.db, w.sales.id, insider.id);
    await scheduler.tick(at(BASE, 33 * 60));
    expect(port.calls).toHaveLength(1);
    const runs = await runsOf(w.store, s.id);
    expect(runs.map((r) => [r.status, r.detail])).toEqual([
      ['started', null],
      ['failed', `refused: its creator, member ${insider.id}, may no longer use channel ${w.sales.id}`],
    ]);
    expect((await scheduleRunEvents(w.audit)).map((e) => e.outcome)).toEqual(['started', 'refused']);
  });

  it('keeps firing the others past a schedule whose stored expression no longer parses', async () => {
    const broken = await scheduleAt(w.store, { orgId: w.org.id, channelId: w.eng.id, createdBy: w.ada.id, cron: '0 9 * * *', prompt: 'broken' }, BASE);
    await w.store.db.updateTable('schedules').set({ cron: 'every day at nine' }).where('id', '=', broken.id).execute();
    await scheduleAt(w.store, { orgId: w.org.id, channelId: w.eng.id, createdBy: w.ada.id, cron: '0 9 * * *', prompt: 'fine' }, BASE);
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString('utf8')), cb()) }));
    const scheduler = schedulerFor({ logger });
    await scheduler.tick(at(BASE, 9 * 60));
    expect(port.calls.map((c) => c.text)).toEqual(['fine']);
    expect(await runsOf(w.store, broken.id)).toEqual([]);
    // Said once, not once a pass.
    await scheduler.tick(at(BASE, 9 * 60 + 1));
    await scheduler.tick(at(BASE, 9 * 60 + 2));
    const warnings = lines.filter((l) => l.includes("could not claim a schedule's firings"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(broken.id);
  });

  it('runs passes on its own once started, and stop() waits for them', async () => {
    // Created a minute ago with an every-minute expression: the first pass has one firing due.
    const now = Date.now();
    const created = new Date(now - 60_000 - (now % 60_000) - 1).toISOString();
    const s = await scheduleAt(w.store, { orgId: w.org.id, channelId: w.eng.id, createdBy: w.ada.id, cron: '* * * * *', prompt: 'tick' }, created);
    const scheduler = schedulerFor({ intervalMs: 10 });
    scheduler.start();
    scheduler.start();
    await port.waitForCalls(1);
    await scheduler.stop();
    const fired = port.calls.length;
    const started = (await runsOf(w.store, s.id)).filter((r) => r.status === 'started');
    expect(started.length).toBe(fired);
    expect(started.every((r) => r.thread !== null)).toBe(true);
    expect(new Set(port.calls.map((c) => c.dedupeKey)).size).toBe(fired);
  });
});
