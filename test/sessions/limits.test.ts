import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../helpers/backends.js';
import { agentTexts, startSessions, systemTexts, type SessionHarness } from './harness.js';

/**
 * Limits enforced outside the sandbox (invariant 12): the turn's wall time and
 * the org's cap on live sandboxes, with the waiting threads told so.
 */
describe.each(BACKENDS)('session limits (%s)', (name) => {
  let h: SessionHarness;

  beforeAll(async () => {
    h = await startSessions(name, { turnTimeoutSeconds: 2, maxSandboxesPerOrg: 1 });
  }, 60_000);
  afterAll(async () => h?.close());

  it('stops a turn that runs past agent.turnTimeoutSeconds and says so', async () => {
    const { thread } = await h.say('sleep 60; echo never');
    const events = await h.untilDone(thread, 1, 30_000);
    expect(events.find((e) => e.type === 'done')!.data.status).toBe('failed');
    expect(systemTexts(events).at(-1)).toMatch(/ran longer than 2 s \(agent.turnTimeoutSeconds\)/);
    expect(agentTexts(events).join('')).not.toContain('never');
    await h.layer.sandboxes.release(thread);
  });

  it('holds turns beyond the org cap, tells their threads how many are ahead, then runs them', async () => {
    const a = await h.say('sleep 1; echo a');
    await h.until('a running', async () => (await h.events(a.thread)).some((e) => e.type === 'status' && e.data.state === 'running'));
    const b = await h.say('echo b');
    const c = await h.say('echo c');
    const bEvents = await h.untilDone(b.thread, 1, 30_000);
    const cEvents = await h.untilDone(c.thread, 1, 30_000);
    const queued = (events: typeof bEvents) => events.filter((e) => e.type === 'status' && e.data.state === 'queued').map((e) => e.data.ahead);
    expect(queued(bEvents)[0]).toBe(0);
    expect(queued(cEvents)[0]).toBe(1);
    expect(bEvents.find((e) => e.type === 'status' && e.data.state === 'queued')!.data.text).toMatch(/^queued: 0 ahead/);
    expect(agentTexts(bEvents)[0]).toMatch(/^b\n/);
    expect(agentTexts(cEvents)[0]).toMatch(/^c\n/);
    // Never more than one live sandbox for the org, counted in the store.
    const live = await h.store.db.selectFrom('sessions').select('id').where('org_id', '=', h.orgId).where('sandbox_holder', 'is not', null).execute();
    expect(live.length).toBeLessThanOrEqual(1);
  });
});
