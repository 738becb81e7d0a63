import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { periodStart } from '../../src/usage/budgets.js';
import { insertUsageEvents, usageEvent } from '../../src/usage/usage-repo.js';
import { BACKENDS } from '../helpers/backends.js';
import { startApi, type ApiHarness } from './harness.js';

/**
 * GET /api/v1/usage and the budgets API over HTTP: admins only, input
 * checked at the edge with errors that name the field, budgets upserted per
 * scope, period and unit, and every change audited with the real caller.
 */
describe.each(BACKENDS)('usage and budgets API (%s)', (backend) => {
  let h: ApiHarness;
  let admin: { token: string; memberId: string };
  let member: { token: string; memberId: string };
  let orgId: string;
  let engId: string;
  let opsId: string;
  const day = periodStart('day', new Date());
  const at = (seconds: number) => new Date(Date.parse(day) + seconds * 1000).toISOString();

  beforeAll(async () => {
    h = await startApi(backend);
    admin = await h.tokenFor('admin', 'alice');
    member = await h.tokenFor('member', 'bob');
    orgId = (await h.api(admin.token, 'GET', '/api/v1/org')).body.id;
    engId = (await h.api(admin.token, 'POST', `/api/v1/workspaces/${h.webWorkspaceId}/channels`, { externalId: 'eng', name: 'eng' })).body.id;
    opsId = (await h.api(admin.token, 'POST', `/api/v1/workspaces/${h.webWorkspaceId}/channels`, { externalId: 'ops', name: 'ops' })).body.id;
    const e = (over: Parameters<typeof usageEvent>[0]) => usageEvent(over);
    const counts = (input: number, output: number, cost: number) => ({ inputTokens: input, outputTokens: output, cacheReadTokens: 1, cacheCreationTokens: 2, cost });
    await insertUsageEvents(h.store.db, [
      e({ orgId, sessionId: 's1', place: { kind: 'channel', channelId: engId }, model: 'claude-sonnet-4-5', ...counts(100, 10, 1_500_000), createdAt: at(1) }),
      e({ orgId, sessionId: 's1', place: { kind: 'channel', channelId: engId }, model: 'claude-sonnet-4-5', ...counts(200, 20, 500_000), createdAt: at(2) }),
      e({ orgId, sessionId: 's2', place: { kind: 'channel', channelId: opsId }, model: 'claude-haiku-4-5', ...counts(5, 5, 25), createdAt: at(3) }),
      e({ orgId, sessionId: 's3', place: { kind: 'dm', memberId: member.memberId }, model: 'claude-opus-4-5', ...counts(40, 4, 300), createdAt: at(4) }),
      // A channel since deleted keeps its usage, without a name.
      e({ orgId, sessionId: 's4', place: { kind: 'channel', channelId: 'gone-channel' }, model: 'm', ...counts(1, 1, 1), createdAt: at(5) }),
    ]);
  });
  afterAll(async () => h?.close());

  it('is for admins: a member gets 403 on every route, no token 401', async () => {
    for (const [method, path, body] of [
      ['GET', '/api/v1/usage'],
      ['GET', '/api/v1/budgets'],
      ['PUT', '/api/v1/budgets', { scope: { kind: 'org' }, period: 'day', unit: 'tokens', limit: 1 }],
      ['DELETE', '/api/v1/budgets/whatever'],
      ['GET', '/api/v1/budgets/status'],
    ] as Array<[string, string, unknown?]>) {
      const r = await h.api(member.token, method, path, body);
      expect(r.status, `${method} ${path}`).toBe(403);
      expect(r.body.error.message).toBe('this needs the admin role; your token has member');
      expect((await h.api(undefined, method, path, body)).status).toBe(401);
    }
    expect((await h.api(admin.token, 'GET', '/api/v1/budgets')).body).toEqual([]);
  });

  it('aggregates by org (all of it), by channel (channel work) and by member (DM work), with names and USD', async () => {
    const byOrg = await h.api(admin.token, 'GET', '/api/v1/usage');
    expect(byOrg.status).toBe(200);
    expect(byOrg.body).toMatchObject({ by: 'org', since: periodStart('month', new Date()) });
    expect(Date.parse(byOrg.body.until)).toBeLessThanOrEqual(Date.now());
    const all = { requests: 5, inputTokens: 346, outputTokens: 40, cacheReadTokens: 5, cacheCreationTokens: 10, costUsd: 2.000326 };
    expect(byOrg.body.rows).toEqual([{ id: orgId, name: 'default', ...all }]);
    expect(byOrg.body.total).toEqual(all);

    const byChannel = await h.api(admin.token, 'GET', `/api/v1/usage?by=channel&since=${encodeURIComponent(day)}`);
    const rows = Object.fromEntries(byChannel.body.rows.map((r: { id: string }) => [r.id, r]));
    expect(rows[engId]).toEqual({ id: engId, name: 'eng', requests: 2, inputTokens: 300, outputTokens: 30, cacheReadTokens: 2, cacheCreationTokens: 4, costUsd: 2 });
    expect(rows[opsId]).toMatchObject({ name: 'ops', requests: 1, costUsd: 0.000025 });
    expect(rows['gone-channel']).toMatchObject({ name: null, requests: 1 });
    expect(byChannel.body.total).toMatchObject({ requests: 4, inputTokens: 306 });

    const byMember = await h.api(admin.token, 'GET', '/api/v1/usage?by=member');
    expect(byMember.body.rows).toEqual([{ id: member.memberId, name: 'bob', requests: 1, inputTokens: 40, outputTokens: 4, cacheReadTokens: 1, cacheCreationTokens: 2, costUsd: 0.0003 }]);

    // [since, until): until excludes.
    const window = await h.api(admin.token, 'GET', `/api/v1/usage?since=${encodeURIComponent(at(1))}&until=${encodeURIComponent(at(2))}`);
    expect(window.body.total.requests).toBe(1);
    const offset = await h.api(admin.token, 'GET', `/api/v1/usage?since=${encodeURIComponent('2000-01-01T01:00:00+01:00')}`);
    expect(offset.body.since).toBe('2000-01-01T00:00:00.000Z');
  });

  it('names what was wrong with a usage query', async () => {
    const bad = async (query: string) => (await h.api(admin.token, 'GET', `/api/v1/usage?${query}`)).body.error.message as string;
    expect(await bad('by=team')).toMatch(/^query\.by: expected org, channel or member/);
    expect(await bad('since=yesterday')).toMatch(/^query\.since: expected an ISO 8601 time \(the start, included\)/);
    expect(await bad('until=2025-13-01T00:00:00Z')).toMatch(/^query\.until: expected an ISO 8601 time/);
    expect(await bad(`since=${encodeURIComponent(at(5))}&until=${encodeURIComponent(at(5))}`)).toMatch(/^query\.since: expected a time before until/);
    expect(await bad('group=channel')).toMatch(/group/);
  });

  it('sets budgets per scope, period and unit (a second PUT updates the same one), lists, reports status and removes them, audited', async () => {
    const put = (body: unknown) => h.api(admin.token, 'PUT', '/api/v1/budgets', body);
    const org = await put({ scope: { kind: 'org' }, period: 'month', unit: 'cost', limit: 50_000_000 });
    expect(org.status).toBe(200);
    expect(org.body).toMatchObject({ scope: { kind: 'org', id: orgId }, period: 'month', unit: 'cost', limit: 50_000_000, updatedBy: admin.memberId });
    const eng = await put({ scope: { kind: 'channel', id: engId }, period: 'day', unit: 'tokens', limit: 300 });
    const again = await put({ scope: { kind: 'channel', id: engId }, period: 'day', unit: 'tokens', limit: 400 });
    expect(again.body).toMatchObject({ id: eng.body.id, limit: 400 });
    const bob = await put({ scope: { kind: 'member', id: member.memberId }, period: 'day', unit: 'cost', limit: 0 });
    expect(bob.status).toBe(200);
    expect((await put({ scope: { kind: 'org', id: orgId }, period: 'month', unit: 'cost', limit: 1 })).body.id).toBe(org.body.id);

    const list = await h.api(admin.token, 'GET', '/api/v1/budgets');
    expect(list.body.map((b: { id: string }) => b.id).sort()).toEqual([org.body.id, eng.body.id, bob.body.id].sort());

    const status = await h.api(admin.token, 'GET', `/api/v1/budgets/status?channel=${engId}`);
    expect(status.status).toBe(200);
    const engStatus = status.body.find((s: { id: string }) => s.id === eng.body.id);
    // #eng today: 300 input + 30 output + 2 cache reads + 4 cache writes.
    expect(engStatus).toMatchObject({ spent: 336, remaining: 64, isSpent: false, periodStart: day });
    expect(status.body.find((s: { id: string }) => s.id === org.body.id)).toMatchObject({ spent: 2_000_326, isSpent: true, remaining: 0 });
    const bobStatus = await h.api(admin.token, 'GET', `/api/v1/budgets/status?member=${member.memberId}`);
    expect(bobStatus.body.find((s: { id: string }) => s.id === bob.body.id)).toMatchObject({ spent: 300, isSpent: true });
    expect((await h.api(admin.token, 'GET', '/api/v1/budgets/status')).body.map((s: { id: string }) => s.id)).toEqual([org.body.id]);

    expect((await h.api(admin.token, 'DELETE', `/api/v1/budgets/${bob.body.id}`)).status).toBe(204);
    expect((await h.api(admin.token, 'DELETE', `/api/v1/budgets/${bob.body.id}`)).status).toBe(404);

    const audit = await h.api(admin.token, 'GET', '/api/v1/audit?type=admin-change&limit=500');
    const changes = audit.body.events.filter((e: { target?: string }) => e.target?.startsWith('budget:'));
    expect(changes.map((e: { action: string }) => e.action)).toEqual(['budget.create', 'budget.create', 'budget.update', 'budget.create', 'budget.update', 'budget.delete']);
    for (const e of changes) expect(e).toMatchObject({ actor: admin.memberId, credential: expect.stringMatching(/^token:/), org: orgId });
    expect(changes[2]).toMatchObject({ target: `budget:${eng.body.id}`, scope: `channel:${engId}`, period: 'day', unit: 'tokens', limit: 400 });
  });

  it('names what was wrong with a budget, and finds nothing of another org', async () => {
    const put = async (body: unknown) => {
      const r = await h.api(admin.token, 'PUT', '/api/v1/budgets', body);
      return `${r.status} ${r.body?.error?.message}`;
    };
    const ok = { scope: { kind: 'channel', id: engId }, period: 'day', unit: 'tokens', limit: 10 };
    expect(await put({ ...ok, limit: -1 })).toMatch(/^400 body\.limit: expected 0 or more/);
    expect(await put({ ...ok, limit: 1.5 })).toMatch(/^400 body\.limit: expected a whole number: tokens, or micro-USD/);
    expect(await put({ ...ok, limit: '10' })).toMatch(/^400 body\.limit: expected a whole number/);
    expect(await put({ ...ok, limit: 1e16 })).toMatch(/^400 body\.limit: expected at most/);
    expect(await put({ ...ok, period: 'week' })).toMatch(/^400 body\.period: expected day or month/);
    expect(await put({ ...ok, unit: 'usd' })).toMatch(/^400 body\.unit: expected tokens or cost/);
    expect(await put({ ...ok, scope: { kind: 'team', id: 'x' } })).toMatch(/^400 body\.scope\.kind: expected org, channel or member/);
    expect(await put({ ...ok, scope: { kind: 'channel' } })).toMatch(/^400 body\.scope\.id: expected the id of the channel/);
    expect(await put({ ...ok, scope: { kind: 'channel', id: 'no-such-channel' } })).toMatch(/^404 body\.scope\.id: channel "no-such-channel" not found/);
    expect(await put({ ...ok, scope: { kind: 'member', id: 'no-such-member' } })).toMatch(/^404 body\.scope\.id: member "no-such-member" not found/);
    expect(await put({ ...ok, scope: { kind: 'org', id: 'another-org' } })).toMatch(/^404 body\.scope\.id: org "another-org" not found/);
    expect(await put({ ...ok, extra: 1 })).toMatch(/^400 body: .*extra/);
    expect((await h.api(admin.token, 'DELETE', '/api/v1/budgets/no-such-budget')).status).toBe(404);
    expect((await h.api(admin.token, 'GET', '/api/v1/budgets/status?channel=nope')).status).toBe(404);
    expect((await h.api(admin.token, 'GET', `/api/v1/budgets/status?channel=${engId}&member=${member.memberId}`)).body.error.message).toBe('query: expected channel or member, not both');
  });
});
