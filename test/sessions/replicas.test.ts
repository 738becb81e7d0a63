import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nowIso } from '../../src/util/ids.js';
import { BACKENDS } from '../helpers/backends.js';
import { agentTexts, startSessions, systemTexts, type SessionHarness } from './harness.js';

/**
 * Several servers on one store (replicas, or a restart): every turn runs once
 * whichever server queued it, and a turn held by a server that died is said
 * to be interrupted — once — and what was queued behind it runs.
 */
describe.each(BACKENDS)('sessions across servers (%s)', (name) => {
  let h: SessionHarness;

  beforeAll(async () => {
    h = await startSessions(name, { maxSandboxesPerOrg: 20 });
    await h.addLayer();
  }, 60_000);
  afterAll(async () => h?.close());

  it('runs each of many turns exactly once with two servers taking messages and claiming', async () => {
    const second = h.layers[1]!;
    const via = (i: number) => (i % 2 === 0 ? h.layer : second);
    const post = (i: number, text: string, thread?: string) =>
      via(i).service.invoke({
        workspaceId: h.workspaceId,
        place: { kind: 'channel', channelId: h.channelId },
        memberId: h.owner.id,
        text,
        trigger: 'message',
        ...(thread ? { threadKey: thread, mustExist: true } : {}),
      });
    const threads = (await Promise.all(Array.from({ length: 8 }, (_, i) => post(i, `echo t${i}`)))).map((r) => (r as { thread: string }).thread);
    // More messages into the same threads, through the other server, while the first turns run (or before they start: then they join them).
    await Promise.all(threads.map((t, i) => post(i + 1, `echo u${i}`, t)));
    for (const [i, t] of threads.entries()) {
      await h.until(`both replies in thread ${i}`, async () => agentTexts(await h.events(t)).length >= 2, 60_000);
      const turns = await h.store.db.selectFrom('turns').select(['id', 'status']).where('session_id', '=', t).execute();
      await h.untilDone(t, turns.length, 30_000);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const events = await h.events(t);
      expect(agentTexts(events).map((r) => r.split('\n')[0])).toEqual([`t${i}`, `u${i}`]);
      // One done per turn, every turn done.
      expect(events.filter((e) => e.type === 'done')).toHaveLength(turns.length);
      // Read again: a turn's last reply comes before its end (its sandbox's files are copied out in between).
      const ended = await h.store.db.selectFrom('turns').select('status').where('session_id', '=', t).execute();
      expect(ended.every((turn) => turn.status === 'done')).toBe(true);
    }
  });

  it('interrupts, once, the running turn of a server that is gone, and runs what was queued behind it', async () => {
    const { thread } = await h.say('true');
    await h.untilDone(thread);
    // A server that died mid-turn: its heartbeat went stale long ago; it holds a turn and a sandbox slot.
    const dead = `ghost:${name}`;
    const old = new Date(Date.now() - 60_000).toISOString();
    await h.store.db.insertInto('server_instances').values({ id: dead, host: 'elsewhere', pid: 1, started_at: old, heartbeat_at: old, stopped_at: null }).execute();
    const turnId = `ghost-turn-${name}`;
    await h.store.db
      .insertInto('turns')
      .values({ id: turnId, session_id: thread, org_id: h.orgId, seq: 99, status: 'running', trigger: 'message', triggered_by: h.owner.id, holder: dead, cancel_requested_by: null, detail: null, created_at: nowIso(), started_at: nowIso(), ended_at: null })
      .execute();
    await h.store.db.updateTable('sessions').set({ sandbox_holder: dead }).where('id', '=', thread).execute();
    // Queued behind the dead turn: it must run after recovery, once.
    await h.say('echo after', { threadKey: thread, mustExist: true });
    const events = await h.untilDone(thread, 3, 30_000);
    expect(systemTexts(events).filter((t) => /interrupted/.test(t))).toHaveLength(1);
    expect(events.find((e) => e.type === 'done' && e.data.turn === turnId)!.data.status).toBe('interrupted');
    await h.until('the queued message answered', async () => agentTexts(await h.events(thread)).some((t) => t.startsWith('after')));
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(agentTexts(await h.events(thread)).filter((t) => t.startsWith('after'))).toHaveLength(1);
    expect((await h.store.db.selectFrom('turns').select('status').where('id', '=', turnId).executeTakeFirstOrThrow()).status).toBe('interrupted');
    expect(await h.store.db.selectFrom('server_instances').select('id').where('id', '=', dead).execute()).toEqual([]);
  });
});
