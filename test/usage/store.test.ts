import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMember } from '../../src/access/members-repo.js';
import { createOrg } from '../../src/access/orgs-repo.js';
import { createChannel, createWorkspace } from '../../src/access/workspaces-repo.js';
import { AuditLog } from '../../src/audit/log.js';
import { openControlStore, type ControlStore } from '../../src/store/database.js';
import { putBudget, removeBudget } from '../../src/usage/budget-service.js';
import { periodStart } from '../../src/usage/budgets.js';
import { getBudget, listBudgets, upsertBudget } from '../../src/usage/budgets-repo.js';
import { aggregateUsage, insertUsageEvents, spentSince, usageEvent, usageOfSession, type NewUsageEvent } from '../../src/usage/usage-repo.js';
import { UsageWriter } from '../../src/usage/usage-writer.js';
import { BACKENDS, createTestBackend, type TestBackend } from '../helpers/backends.js';

/**
 * Usage rows and budgets on SQLite and Postgres: who pays (the org for
 * channel work, the member for DM work), sums per UTC day and month and per
 * scope (one query), aggregation for the API, and budgets unique per scope,
 * period and unit with their changes audited.
 */
describe.each(BACKENDS)('usage store (%s)', (name) => {
  let backend: TestBackend;
  let store: ControlStore;
  let audit: AuditLog;
  let orgId: string;
  let otherOrgId: string;
  let eng: string;
  let ops: string;
  let alice: string;
  let bob: string;
  const now = new Date();
  const today = (h = 0) => new Date(Date.parse(periodStart('day', now)) + h * 1000).toISOString();
  const monthStart = periodStart('month', now);
  // Earlier this month but not today (or, on the 1st, just before the month: then it counts for nothing this month).
  const earlierThisMonth = new Date(Date.parse(periodStart('day', now)) - 1000).toISOString();
  const lastMonth = new Date(Date.parse(monthStart) - 1000).toISOString();
  const tokens = (input: number, output = 0, cacheRead = 0, cacheCreation = 0) => ({ inputTokens: input, outputTokens: output, cacheReadTokens: cacheRead, cacheCreationTokens: cacheCreation });

  beforeAll(async () => {
    backend = await createTestBackend(name);
    store = await openControlStore(backend.location);
    audit = new AuditLog(store);
    const org = await createOrg(store.db, 'Acme');
    orgId = org.id;
    otherOrgId = (await createOrg(store.db, 'Other')).id;
    const ws = await createWorkspace(store.db, { orgId, kind: 'web', externalId: 'web', name: 'web' });
    eng = (await createChannel(store.db, { workspaceId: ws.id, externalId: 'eng', name: 'eng' })).id;
    ops = (await createChannel(store.db, { workspaceId: ws.id, externalId: 'ops', name: 'ops' })).id;
    alice = (await createMember(store.db, { workspaceId: ws.id, externalId: 'alice', displayName: 'Alice' })).id;
    bob = (await createMember(store.db, { workspaceId: ws.id, externalId: 'bob', displayName: 'Bob' })).id;
    const ev = (e: Omit<NewUsageEvent, 'orgId' | 'model'> & { orgId?: string; model?: string }) => usageEvent({ orgId, model: 'claude-sonnet-4-5', ...e });
    await insertUsageEvents(store.db, [
      ev({ sessionId: 's-eng', place: { kind: 'channel', channelId: eng }, ...tokens(100, 10, 5, 1), cost: 1000, createdAt: today(1) }),
      ev({ sessionId: 's-eng', place: { kind: 'channel', channelId: eng }, ...tokens(200, 20), cost: 2000, createdAt: today(2) }),
      ev({ sessionId: 's-eng-old', place: { kind: 'channel', channelId: eng }, ...tokens(1000), cost: 10_000, createdAt: earlierThisMonth }),
      ev({ sessionId: 's-eng-older', place: { kind: 'channel', channelId: eng }, ...tokens(50_000), cost: 500_000, createdAt: lastMonth }),
      ev({ sessionId: 's-ops', place: { kind: 'channel', channelId: ops }, ...tokens(7), cost: 70, createdAt: today(3) }),
      ev({ sessionId: 's-alice', place: { kind: 'dm', memberId: alice }, ...tokens(30, 3), cost: 300, createdAt: today(4) }),
      ev({ sessionId: 's-bob', place: { kind: 'dm', memberId: bob }, ...tokens(4), cost: 40, createdAt: today(5), model: 'unknown' }),
      ev({ sessionId: 's-other', orgId: otherOrgId, place: { kind: 'channel', channelId: 'elsewhere' }, ...tokens(1e6), cost: 1e7, createdAt: today(6) }),
    ]);
  });
  afterAll(async () => {
    await store.close();
    await backend.cleanup();
  });

  it('attributes who pays by the place: the org for channel work, the member for DM work', async () => {
    const rows = await store.db.selectFrom('usage_events').select(['session_id', 'payer_kind', 'payer_id', 'channel_id', 'member_id']).where('org_id', '=', orgId).orderBy('created_at').execute();
    const by = Object.fromEntries(rows.map((r) => [r.session_id, r]));
    expect(by['s-eng']).toMatchObject({ payer_kind: 'org', payer_id: orgId, channel_id: eng, member_id: null });
    expect(by['s-alice']).toMatchObject({ payer_kind: 'member', payer_id: alice, channel_id: null, member_id: alice });
    expect((await usageOfSession(store.db, 's-alice'))[0]).toMatchObject({ place: { kind: 'dm', memberId: alice }, inputTokens: 30, outputTokens: 3, cost: 300, model: 'claude-sonnet-4-5' });
    expect((await usageOfSession(store.db, 's-eng')).map((e) => e.inputTokens)).toEqual([100, 200]);
  });

  it('refuses rows whose payer does not match their place, and negative counts', async () => {
    const base = { id: 'x', org_id: orgId, session_id: 's', model: 'm', input_tokens: 1, output_tokens: 0, cache_read_tokens: 0, cache_creation_tokens: 0, cost: 0, created_at: today() };
    await expect(store.db.insertInto('usage_events').values({ ...base, payer_kind: 'org', payer_id: orgId, channel_id: null, member_id: alice }).execute()).rejects.toThrow();
    await expect(store.db.insertInto('usage_events').values({ ...base, payer_kind: 'member', payer_id: alice, channel_id: eng, member_id: alice }).execute()).rejects.toThrow();
    await expect(store.db.insertInto('usage_events').values({ ...base, payer_kind: 'someone', payer_id: alice, channel_id: null, member_id: alice }).execute()).rejects.toThrow();
    await expect(store.db.insertInto('usage_events').values({ ...base, input_tokens: -1, payer_kind: 'org', payer_id: orgId, channel_id: eng, member_id: null }).execute()).rejects.toThrow();
  });

  it('sums per UTC day and month, for the org (all its work) and for the place, in one query', async () => {
    const dayStart = periodStart('day', now);
    const firstOfMonth = earlierThisMonth < monthStart;
    const engSpent = await spentSince(store.db, { orgId, place: { kind: 'channel', channelId: eng }, dayStart, monthStart, needOrg: true });
    // tokens count every kind: input + output + cache reads + cache writes.
    const engToday = 100 + 10 + 5 + 1 + 200 + 20;
    const orgToday = engToday + 7 + 33 + 4;
    expect(engSpent.place.day).toEqual({ tokens: engToday, cost: 3000 });
    expect(engSpent.place.month).toEqual({ tokens: engToday + (firstOfMonth ? 0 : 1000), cost: 3000 + (firstOfMonth ? 0 : 10_000) });
    expect(engSpent.org.day).toEqual({ tokens: orgToday, cost: 3000 + 70 + 300 + 40 });
    expect(engSpent.org.month.tokens).toBe(orgToday + (firstOfMonth ? 0 : 1000));

    const aliceSpent = await spentSince(store.db, { orgId, place: { kind: 'dm', memberId: alice }, dayStart, monthStart, needOrg: true });
    expect(aliceSpent.place.day).toEqual({ tokens: 33, cost: 300 });
    expect(aliceSpent.org.day.tokens).toBe(orgToday);
    // Without an org budget, the query reads the place's rows only (its org amounts are not used).
    const placeOnly = await spentSince(store.db, { orgId, place: { kind: 'dm', memberId: alice }, dayStart, monthStart, needOrg: false });
    expect(placeOnly.place).toEqual(aliceSpent.place);
    // The org's own status: the place's amounts are nothing.
    const orgOnly = await spentSince(store.db, { orgId, place: undefined, dayStart, monthStart, needOrg: true });
    expect(orgOnly.place.month).toEqual({ tokens: 0, cost: 0 });
    expect(orgOnly.org).toEqual(engSpent.org);
    // Another org's spend never counts.
    const other = await spentSince(store.db, { orgId: otherOrgId, place: { kind: 'channel', channelId: eng }, dayStart, monthStart, needOrg: true });
    expect(other.place.day.tokens).toBe(0);
    expect(other.org.day.tokens).toBe(1e6);
  });

  it('aggregates by org, channel (channel work) and member (DM work) over [since, until)', async () => {
    const since = today(0);
    const until = today(100);
    const byOrg = await aggregateUsage(store.db, { orgId, by: 'org', since, until });
    expect(byOrg).toEqual([{ id: orgId, requests: 5, inputTokens: 341, outputTokens: 33, cacheReadTokens: 5, cacheCreationTokens: 1, cost: 3410 }]);
    const byChannel = await aggregateUsage(store.db, { orgId, by: 'channel', since, until });
    expect(byChannel.map((r) => [r.id, r.requests, r.inputTokens, r.cost]).sort()).toEqual([[eng, 2, 300, 3000], [ops, 1, 7, 70]].sort());
    const byMember = await aggregateUsage(store.db, { orgId, by: 'member', since, until });
    expect(byMember.map((r) => [r.id, r.requests, r.inputTokens]).sort()).toEqual([[alice, 1, 30], [bob, 1, 4]].sort());
    // until is excluded, since included.
    expect((await aggregateUsage(store.db, { orgId, by: 'org', since: today(1), until: today(2) }))[0]?.requests).toBe(1);
    const wide = await aggregateUsage(store.db, { orgId, by: 'channel', since: '2000-01-01T00:00:00.000Z', until: today(100) });
    expect(wide.find((r) => r.id === eng)).toMatchObject({ requests: 4, inputTokens: 51_300, cost: 513_000 });
  });

  it('group-commits usage events, counting what is not yet written as pending', async () => {
    const writer = new UsageWriter(store);
    const events = Array.from({ length: 50 }, (_, i) => usageEvent({ orgId, sessionId: 's-batch', place: { kind: 'channel', channelId: ops }, model: 'm', ...tokens(i), cost: i }));
    for (const e of events) writer.add(e);
    expect(writer.pending).toHaveLength(50);
    await writer.flushed();
    expect(writer.pending).toHaveLength(0);
    expect((await usageOfSession(store.db, 's-batch')).reduce((n, e) => n + e.inputTokens, 0)).toBe((49 * 50) / 2);
  });

  it('keeps one budget per scope, period and unit: a second PUT updates it in place', async () => {
    const first = await upsertBudget(store.db, { orgId, scope: { kind: 'channel', id: eng }, period: 'day', unit: 'tokens', limit: 1000, updatedBy: 'm-1' });
    expect(first.created).toBe(true);
    const again = await upsertBudget(store.db, { orgId, scope: { kind: 'channel', id: eng }, period: 'day', unit: 'tokens', limit: 5000, updatedBy: 'm-2' });
    expect(again).toMatchObject({ created: false, budget: { id: first.budget.id, limit: 5000, updatedBy: 'm-2' } });
    const month = await upsertBudget(store.db, { orgId, scope: { kind: 'channel', id: eng }, period: 'month', unit: 'tokens', limit: 1e12, updatedBy: 'm-1' });
    expect(month.budget.id).not.toBe(first.budget.id);
    expect(month.budget.limit).toBe(1e12);
    // At once, two writers of the same budget still make one.
    await Promise.all([1, 2, 3].map((n) => upsertBudget(store.db, { orgId, scope: { kind: 'org', id: orgId }, period: 'day', unit: 'cost', limit: n, updatedBy: 'race' })));
    expect((await listBudgets(store.db, orgId)).filter((b) => b.scope.kind === 'org')).toHaveLength(1);
    await expect(store.db.insertInto('budgets').values({ id: 'bad', org_id: orgId, scope_kind: 'team', scope_id: 'x', period: 'day', unit: 'tokens', limit: 1, updated_at: '', updated_by: '' }).execute()).rejects.toThrow();
    await expect(store.db.insertInto('budgets').values({ id: 'bad', org_id: orgId, scope_kind: 'org', scope_id: 'x', period: 'week', unit: 'tokens', limit: 1, updated_at: '', updated_by: '' }).execute()).rejects.toThrow();
    await expect(store.db.insertInto('budgets').values({ id: 'bad', org_id: orgId, scope_kind: 'org', scope_id: 'x', period: 'day', unit: 'tokens', limit: -1, updated_at: '', updated_by: '' }).execute()).rejects.toThrow();
  });

  it('audits budget changes as admin changes, in the same transaction', async () => {
    const budget = await putBudget(store, audit, { id: alice, credential: 'token:t1' }, { orgId, scope: { kind: 'member', id: bob }, period: 'month', unit: 'cost', limit: 5_000_000 });
    await putBudget(store, audit, alice, { orgId, scope: { kind: 'member', id: bob }, period: 'month', unit: 'cost', limit: 6_000_000 });
    expect(await removeBudget(store, audit, alice, budget)).toBe(true);
    expect(await removeBudget(store, audit, alice, budget)).toBe(false);
    expect(await getBudget(store.db, budget.id)).toBeUndefined();
    const events = [];
    for await (const e of audit.query({ type: 'admin-change' })) if (String(e.target).startsWith('budget:')) events.push(e);
    expect(events.map((e) => [e.action, e.actor, e.limit])).toEqual([
      ['budget.create', alice, 5_000_000],
      ['budget.update', alice, 6_000_000],
      ['budget.delete', alice, undefined],
    ]);
    expect(events[0]).toMatchObject({ credential: 'token:t1', org: orgId, scope: `member:${bob}`, period: 'month', unit: 'cost', target: `budget:${budget.id}` });
  });
});
