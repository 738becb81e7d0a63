import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addChannelMember } from '../../../src/access/channel-access.js';
import { createOrg } from '../../../src/access/orgs-repo.js';
import { createChannel, createWorkspace } from '../../../src/access/workspaces-repo.js';
import { scheduleRoutes } from '../../../src/server/routes/schedules.js';
import { Scheduler } from '../../../src/surfaces/schedules/scheduler.js';
import { BACKENDS } from '../../helpers/backends.js';
import { startApi, type ApiHarness } from '../../server/harness.js';
import { RecordingPort, silentLogger } from './helpers.js';

const MAX_PROMPT = 1000;

/** The hour and weekday of an instant on the wall clock of `timeZone`. */
function wallClock(iso: string, timeZone: string): { hour: string; minute: string; weekday: string } {
  const parts = new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', weekday: 'short', hourCycle: 'h23' }).formatToParts(new Date(iso));
  const part = (type: string) => parts.find((p) => p.type === type)!.value;
  return { hour: part('hour'), minute: part('minute'), weekday: part('weekday') };
}

describe.each(BACKENDS)('the schedules API (%s)', (backend) => {
  let h: ApiHarness;
  let admin: { token: string; memberId: string };
  let bob: { token: string; memberId: string };
  let carol: { token: string; memberId: string };
  let eng: string;
  let secret: string;
  let foreign: string;

  beforeAll(async () => {
    h = await startApi(backend, { routes: [(deps) => scheduleRoutes(deps, { maxPromptBytes: MAX_PROMPT })] });
    admin = await h.tokenFor('admin', 'alice');
    bob = await h.tokenFor('member', 'bob');
    carol = await h.tokenFor('member', 'carol');
    eng = (await h.api(h.ownerToken, 'POST', `/api/v1/workspaces/${h.webWorkspaceId}/channels`, { externalId: 'eng', name: 'eng' })).body.id;
    secret = (await h.api(h.ownerToken, 'POST', `/api/v1/workspaces/${h.webWorkspaceId}/channels`, { externalId: 'secret', name: 'secret', isPrivate: true })).body.id;
    await addChannelMember(h.store.db, secret, bob.memberId);
    // A channel of another org in the same database.
    const other = await createOrg(h.store.db, 'elsewhere');
    const ws = await createWorkspace(h.store.db, { orgId: other.id, kind: 'web', externalId: 'web', name: 'elsewhere' });
    foreign = (await createChannel(h.store.db, { workspaceId: ws.id, externalId: 'x', name: 'eng' })).id;
  });
  afterAll(async () => h?.close());

  it('creates a schedule (201) with its next run in its time zone, audited without the prompt', async () => {
    const before = Date.now();
    const created = await h.api(bob.token, 'POST', `/api/v1/channels/${eng}/schedules`, { cron: '0 9 * * 1-5', timezone: 'Europe/Paris', prompt: 'summarise yesterday' });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      id: expect.any(String),
      channel: eng,
      cron: '0 9 * * 1-5',
      timezone: 'Europe/Paris',
      prompt: 'summarise yesterday',
      createdBy: bob.memberId,
      createdAt: expect.any(String),
      nextRun: expect.any(String),
    });
    expect(Date.parse(created.body.nextRun)).toBeGreaterThan(before);
    const local = wallClock(created.body.nextRun, 'Europe/Paris');
    expect([local.hour, local.minute]).toEqual(['09', '00']);
    expect(['Mon', 'Tue', 'Wed', 'Thu', 'Fri']).toContain(local.weekday);

    const plain = await h.api(bob.token, 'POST', `/api/v1/channels/${eng}/schedules`, { cron: '30 6 * * *', prompt: 'morning' });
    expect(plain.status).toBe(201);
    expect(plain.body.timezone).toBe('UTC');
    expect(plain.body.nextRun).toMatch(/T06:30:00\.000Z$/);

    const events = (await h.api(h.ownerToken, 'GET', '/api/v1/audit?type=admin-change&limit=1000')).body.events as Record<string, unknown>[];
    const audited = events.find((e) => e.action === 'schedule.create' && e.target === `schedule:${created.body.id}`);
    expect(audited).toMatchObject({ actor: bob.memberId, credential: expect.stringMatching(/^token:/), channel: eng, cron: '0 9 * * 1-5', timezone: 'Europe/Paris', outcome: 'ok' });
    expect(JSON.stringify(audited)).not.toContain('summarise yesterday');
  });

  it('lists a channel\'s schedules, the caller\'s visible ones, and one with its recent runs', async () => {
    const created = (await h.api(carol.token, 'POST', `/api/v1/channels/${eng}/schedules`, { cron: '*/15 * * * *', prompt: 'check the queue' })).body;
    const list = await h.api(carol.token, 'GET', `/api/v1/channels/${eng}/schedules`);
    expect(list.status).toBe(200);
    expect(list.body.map((s: { id: string }) => s.id)).toContain(created.id);
    expect((await h.api(carol.token, 'GET', '/api/v1/schedules')).body.map((s: { id: string }) => s.id)).toContain(created.id);

    const fresh = await h.api(carol.token, 'GET', `/api/v1/schedules/${created.id}`);
    expect(fresh.status).toBe(200);
    expect(fresh.body).toMatchObject({ id: created.id, channel: eng, cron: '*/15 * * * *', runs: [] });

    // The scheduler fires it at its next run; the run shows up with its thread.
    const port = new RecordingPort();
    await new Scheduler({ store: h.store, audit: h.audit, port, logger: silentLogger, graceSeconds: 600 }).tick(new Date(created.nextRun));
    const mine = port.calls.filter((c) => c.schedule?.id === created.id);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ memberId: carol.memberId, text: 'check the queue', place: { kind: 'channel', channelId: eng }, workspaceId: h.webWorkspaceId });
    const ran = await h.api(carol.token, 'GET', `/api/v1/schedules/${created.id}`);
    expect(ran.body.runs).toEqual([{ fireTime: created.nextRun, status: 'started', thread: expect.stringMatching(/^thread-/), detail: null }]);
  });

  it.each([
    [{ cron: 'every day', prompt: 'x' }, /^cron: expected five fields "minute hour day-of-month month day-of-week"/],
    [{ cron: '0 9 * * * *', prompt: 'x' }, /^cron: .*is not valid/],
    [{ cron: '0 0 30 2 *', prompt: 'x' }, /^cron: "0 0 30 2 \*" never fires/],
    [{ cron: '0 9 * * *', timezone: 'Europe/Atlantis', prompt: 'x' }, /^timezone: expected an IANA time zone such as "Europe\/Paris" or "UTC", got "Europe\/Atlantis"$/],
    [{ cron: '0 9 * * *', timezone: '+02:00', prompt: 'x' }, /^timezone: expected an IANA time zone/],
    [{ cron: '0 9 * * *', prompt: '   ' }, /^prompt: expected the text to post in the channel, got an empty one$/],
    [{ cron: '0 9 * * *', prompt: 'é'.repeat(MAX_PROMPT / 2 + 1) }, new RegExp(`^prompt: expected at most ${MAX_PROMPT} bytes of UTF-8 \\(agent.maxMessageBytes\\), got ${MAX_PROMPT + 2}$`)],
    [{ prompt: 'x' }, /^body\.cron: expected a cron expression such as "0 9 \* \* 1-5"$/],
    [{ cron: '0 9 * * *' }, /^body\.prompt: expected the text to post in the channel$/],
    [{ cron: 9, prompt: 'x' }, /^body\.cron: expected a cron expression/],
    [{ cron: '0 9 * * *', prompt: 'x', channel: 'elsewhere' }, /^body: .*channel/],
  ])('answers 400 naming the field for %j', async (body, message) => {
    const res = await h.api(bob.token, 'POST', `/api/v1/channels/${eng}/schedules`, body);
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(message);
  });

  it('answers 400 for a body that is not JSON, and 401 without a token', async () => {
    const res = await h.api(bob.token, 'POST', `/api/v1/channels/${eng}/schedules`, 'cron=0 9 * * *');
    expect(res.status).toBe(400);
    expect((await h.api(undefined, 'POST', `/api/v1/channels/${eng}/schedules`, { cron: '0 9 * * *', prompt: 'x' })).status).toBe(401);
    expect((await h.api(undefined, 'GET', '/api/v1/schedules')).status).toBe(401);
  });

  it('refuses a private channel to a non-member, and hides its schedules from them', async () => {
    const refused = await h.api(carol.token, 'POST', `/api/v1/channels/${secret}/schedules`, { cron: '0 9 * * *', prompt: 'leak the plans' });
    expect(refused.status).toBe(403);
    expect(refused.body.error.message).toBe(`channel "${secret}": you may not use it (it is private and you are not one of its members)`);
    expect((await h.api(carol.token, 'GET', `/api/v1/channels/${secret}/schedules`)).status).toBe(403);

    const bobs = await h.api(bob.token, 'POST', `/api/v1/channels/${secret}/schedules`, { cron: '0 9 * * *', prompt: 'the plans' });
    expect(bobs.status).toBe(201);
    expect((await h.api(carol.token, 'GET', `/api/v1/schedules/${bobs.body.id}`)).status).toBe(404);
    expect((await h.api(carol.token, 'DELETE', `/api/v1/schedules/${bobs.body.id}`)).status).toBe(404);
    expect((await h.api(carol.token, 'GET', '/api/v1/schedules')).body.map((s: { id: string }) => s.id)).not.toContain(bobs.body.id);
    // Its members and the org's admins see it.
    expect((await h.api(bob.token, 'GET', `/api/v1/schedules/${bobs.body.id}`)).status).toBe(200);
    expect((await h.api(admin.token, 'GET', `/api/v1/channels/${secret}/schedules`)).body.map((s: { id: string }) => s.id)).toEqual([bobs.body.id]);
  });

  it("refuses a member the org's member access does not let invoke the agent", async () => {
    expect((await h.api(h.ownerToken, 'PATCH', '/api/v1/org', { memberAccess: 'roles', memberAccessRoles: ['eng'] })).status).toBe(200);
    try {
      const refused = await h.api(carol.token, 'POST', `/api/v1/channels/${eng}/schedules`, { cron: '0 9 * * *', prompt: 'x' });
      expect(refused.status).toBe(403);
      expect(refused.body.error.message).toBe('you may not invoke the agent, so you may not schedule it: Only people with one of these roles can use Tagbox here: eng. Ask an admin.');
    } finally {
      expect((await h.api(h.ownerToken, 'PATCH', '/api/v1/org', { memberAccess: 'anyone', memberAccessRoles: [] })).status).toBe(200);
    }
    expect((await h.api(carol.token, 'POST', `/api/v1/channels/${eng}/schedules`, { cron: '0 9 * * *', prompt: 'x' })).status).toBe(201);
  });

  it("answers 404 for another org's channel and schedule", async () => {
    const res = await h.api(h.ownerToken, 'POST', `/api/v1/channels/${foreign}/schedules`, { cron: '0 9 * * *', prompt: 'x' });
    expect(res.status).toBe(404);
    expect(res.body.error.message).toBe(`channel "${foreign}" not found`);
    expect((await h.api(h.ownerToken, 'GET', `/api/v1/channels/${foreign}/schedules`)).status).toBe(404);
    expect((await h.api(bob.token, 'POST', '/api/v1/channels/no-such-channel/schedules', { cron: '0 9 * * *', prompt: 'x' })).status).toBe(404);
    const theirs = (await h.api(h.ownerToken, 'GET', '/api/v1/schedules')).body.map((s: { channel: string }) => s.channel);
    expect(theirs).not.toContain(foreign);
  });

  it("lets the creator or an admin delete a schedule, and not another member", async () => {
    const bobs = (await h.api(bob.token, 'POST', `/api/v1/channels/${eng}/schedules`, { cron: '0 12 * * *', prompt: 'lunch' })).body;
    const denied = await h.api(carol.token, 'DELETE', `/api/v1/schedules/${bobs.id}`);
    expect(denied.status).toBe(403);
    expect(denied.body.error.message).toBe(`schedule "${bobs.id}": only its creator or an admin may delete it`);
    expect((await h.api(carol.token, 'GET', `/api/v1/schedules/${bobs.id}`)).status).toBe(200);

    expect((await h.api(bob.token, 'DELETE', `/api/v1/schedules/${bobs.id}`)).status).toBe(204);
    expect((await h.api(bob.token, 'GET', `/api/v1/schedules/${bobs.id}`)).status).toBe(404);
    expect((await h.api(bob.token, 'DELETE', `/api/v1/schedules/${bobs.id}`)).status).toBe(404);

    const carols = (await h.api(carol.token, 'POST', `/api/v1/channels/${eng}/schedules`, { cron: '0 13 * * *', prompt: 'after lunch' })).body;
    expect((await h.api(admin.token, 'DELETE', `/api/v1/schedules/${carols.id}`)).status).toBe(204);
    expect((await h.api(carol.token, 'GET', `/api/v1/channels/${eng}/schedules`)).body.map((s: { id: string }) => s.id)).not.toContain(carols.id);

    const events = (await h.api(h.ownerToken, 'GET', '/api/v1/audit?type=admin-change&limit=1000')).body.events as Record<string, unknown>[];
    const deletes = events.filter((e) => e.action === 'schedule.delete');
    expect(deletes).toEqual([
      expect.objectContaining({ actor: bob.memberId, target: `schedule:${bobs.id}`, createdBy: bob.memberId }),
      expect.objectContaining({ actor: admin.memberId, target: `schedule:${carols.id}`, createdBy: carol.memberId }),
    ]);
  });
});
