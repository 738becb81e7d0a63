import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Place } from '../../access/effective-policy.js';
import { getMember } from '../../access/members-repo.js';
import { getOrg } from '../../access/orgs-repo.js';
import { getChannel, getWorkspace } from '../../access/workspaces-repo.js';
import { putBudget, removeBudget } from '../../usage/budget-service.js';
import { applicableBudgets, BUDGET_PERIODS, BUDGET_SCOPES, BUDGET_UNITS, MAX_BUDGET_LIMIT, periodStart, spentAgainst, type Budget } from '../../usage/budgets.js';
import { getBudget, listBudgets } from '../../usage/budgets-repo.js';
import { aggregateUsage, spentSince, type UsageTotals } from '../../usage/usage-repo.js';
import type { ServerDeps } from '../deps.js';
import { badRequest, notFound } from '../http-errors.js';
import { actorOf, type Principal } from '../principal.js';
import { route } from '../route.js';

const isoTime = (what: string) => z.iso.datetime({ offset: true, error: `expected an ISO 8601 time (${what}), such as 2025-01-31T00:00:00Z` });

const usageQuery = z.strictObject({
  by: z.enum(['org', 'channel', 'member'], { error: 'expected org, channel or member' }).default('org'),
  since: isoTime('the start, included').optional(),
  until: isoTime('the end, excluded').optional(),
  /** day: one row per UTC day and key (the console's chart). */
  bucket: z.enum(['day'], { error: 'expected day' }).optional(),
});

const budgetBody = z.strictObject({
  scope: z.strictObject({
    kind: z.enum(BUDGET_SCOPES, { error: 'expected org, channel or member' }),
    id: z.string().min(1).max(100).optional(),
  }),
  period: z.enum(BUDGET_PERIODS, { error: 'expected day or month (UTC)' }),
  unit: z.enum(BUDGET_UNITS, { error: 'expected tokens or cost' }),
  limit: z
    .number({ error: 'expected a whole number: tokens, or micro-USD for a cost budget (1000000 = $1)' })
    .min(0, 'expected 0 or more (0 stops all model use of the scope)')
    .max(MAX_BUDGET_LIMIT, `expected at most ${MAX_BUDGET_LIMIT}`)
    .int('expected a whole number: tokens, or micro-USD for a cost budget (1000000 = $1)'),
});

const idParams = z.strictObject({ id: z.string().min(1).max(100) });
const statusQuery = z.strictObject({ channel: z.string().min(1).max(100).optional(), member: z.string().min(1).max(100).optional() });

/**
 * Model usage and budgets (DESIGN.md "Model access and usage"): what the
 * proxy metered, aggregated by org, channel (channel work) or member (DM
 * work: what each member pays), and the budgets the proxy enforces. Admins
 * only; budget changes are audited as admin changes.
 */
export function usageRoutes(deps: ServerDeps) {
  const db = deps.store.db;

  async function channelOf(principal: Principal, id: string, where: string) {
    const channel = await getChannel(db, id);
    const workspace = channel && (await getWorkspace(db, channel.workspaceId));
    if (!channel || workspace?.orgId !== principal.orgId) throw notFound(`${where}: channel "${id}" not found`);
    return channel;
  }

  async function memberOf(principal: Principal, id: string, where: string) {
    const member = await getMember(db, id);
    const workspace = member && (await getWorkspace(db, member.workspaceId));
    if (!member || workspace?.orgId !== principal.orgId) throw notFound(`${where}: member "${id}" not found`);
    return member;
  }

  async function budgetIn(principal: Principal, id: string): Promise<Budget> {
    const budget = await getBudget(db, id);
    if (!budget || budget.orgId !== principal.orgId) throw notFound(`budget "${id}" not found`);
    return budget;
  }

  return async (app: FastifyInstance) => {
    route(app, {
      method: 'GET',
      url: '/usage',
      tag: 'usage',
      summary: 'Model usage metered at the proxy, by org (all), channel (channel work) or member (DM work); since defaults to the start of this UTC month, until to now',
      role: 'admin',
      query: usageQuery,
      handler: async ({ query, principal }) => {
        const now = new Date();
        const since = query.since ? new Date(query.since) : new Date(periodStart('month', now));
        const until = query.until ? new Date(query.until) : now;
        if (since.getTime() >= until.getTime()) throw badRequest(`query.since: expected a time before until (${until.toISOString()}), got ${since.toISOString()}`);
        const rows = await aggregateUsage(db, { orgId: principal.orgId, by: query.by, since: since.toISOString(), until: until.toISOString(), ...(query.bucket ? { bucket: query.bucket } : {}) });
        const names = await namesOf(query.by, [...new Set(rows.map((r) => r.id))]);
        const total = rows.reduce<UsageTotals>(
          (t, r) => ({
            requests: t.requests + r.requests,
            inputTokens: t.inputTokens + r.inputTokens,
            outputTokens: t.outputTokens + r.outputTokens,
            cacheReadTokens: t.cacheReadTokens + r.cacheReadTokens,
            cacheCreationTokens: t.cacheCreationTokens + r.cacheCreationTokens,
            cost: t.cost + r.cost,
          }),
          { requests: 0, inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheCreationTokens: 0, cost: 0 },
        );
        const label = (id: string) => (query.by === 'org' ? 'org' : query.by === 'channel' ? (names.has(id) ? `#${names.get(id)}` : id) : (names.get(id) ?? id));
        return {
          by: query.by,
          since: since.toISOString(),
          until: until.toISOString(),
          ...(query.bucket ? { bucket: query.bucket } : {}),
          // Per day: `day`, and `key`/`label` (what the chart plots) beside the usual id and name.
          rows: rows.map((r) => ({ ...(r.day ? { day: r.day, key: r.id, label: label(r.id) } : {}), id: r.id, name: names.get(r.id) ?? null, ...totalsView(r) })),
          total: totalsView(total),
          ...(query.bucket ? { totals: totalsView(total) } : {}),
        };
      },
    });
    route(app, {
      method: 'GET',
      url: '/budgets',
      tag: 'usage',
      summary: "The org's model budgets (limits in tokens, or micro-USD for cost)",
      role: 'admin',
      handler: async ({ principal }) => (await listBudgets(db, principal.orgId)).map(budgetView),
    });
    route(app, {
      method: 'PUT',
      url: '/budgets',
      tag: 'usage',
      summary: 'Set a budget (one per scope, period and unit): tokens, or micro-USD for cost (1000000 = $1); the proxy holds model requests to it from the next one',
      role: 'admin',
      body: budgetBody,
      handler: async ({ body, principal }) => {
        let scopeId: string;
        if (body.scope.kind === 'org') {
          if (body.scope.id !== undefined && body.scope.id !== principal.orgId) throw notFound(`body.scope.id: org "${body.scope.id}" not found (leave it out for your org)`);
          scopeId = principal.orgId;
        } else {
          if (body.scope.id === undefined) throw badRequest(`body.scope.id: expected the id of the ${body.scope.kind}`);
          scopeId = body.scope.kind === 'channel' ? (await channelOf(principal, body.scope.id, 'body.scope.id')).id : (await memberOf(principal, body.scope.id, 'body.scope.id')).id;
        }
        const budget = await putBudget(deps.store, deps.audit, actorOf(principal), {
          orgId: principal.orgId,
          scope: { kind: body.scope.kind, id: scopeId },
          period: body.period,
          unit: body.unit,
          limit: body.limit,
        });
        return budgetView(budget);
      },
    });
    route(app, {
      method: 'DELETE',
      url: '/budgets/:id',
      tag: 'usage',
      summary: 'Remove a budget',
      role: 'admin',
      status: 204,
      params: idParams,
      handler: async ({ params, principal }) => {
        const budget = await budgetIn(principal, params.id);
        if (!(await removeBudget(deps.store, deps.audit, actorOf(principal), budget))) throw notFound(`budget "${params.id}" not found`);
      },
    });
    route(app, {
      method: 'GET',
      url: '/budgets/status',
      tag: 'usage',
      summary: "The budgets that hold work in a channel (?channel=) or a member's DMs (?member=), or the org's own, with what is spent this UTC day or month",
      role: 'admin',
      query: statusQuery,
      handler: async ({ query, principal }) => {
        if (query.channel !== undefined && query.member !== undefined) throw badRequest('query: expected channel or member, not both');
        let place: Place | undefined;
        if (query.channel !== undefined) place = { kind: 'channel', channelId: (await channelOf(principal, query.channel, 'query.channel')).id };
        else if (query.member !== undefined) place = { kind: 'dm', memberId: (await memberOf(principal, query.member, 'query.member')).id };
        const all = await listBudgets(db, principal.orgId);
        const budgets = place ? applicableBudgets(all, principal.orgId, place) : all.filter((b) => b.scope.kind === 'org');
        const now = new Date();
        const spent = await spentSince(db, { orgId: principal.orgId, place, dayStart: periodStart('day', now), monthStart: periodStart('month', now), needOrg: true });
        return budgets.map((b) => {
          const used = spentAgainst(b, spent);
          return { ...budgetView(b), spent: used, remaining: Math.max(0, b.limit - used), isSpent: used >= b.limit, periodStart: periodStart(b.period, now) };
        });
      },
    });
  };

  async function namesOf(by: 'org' | 'channel' | 'member', ids: string[]): Promise<Map<string, string>> {
    const names = new Map<string, string>();
    for (const id of ids) {
      const name = by === 'org' ? (await getOrg(db, id))?.name : by === 'channel' ? (await getChannel(db, id))?.name : (await getMember(db, id))?.displayName;
      // A deleted channel or member keeps its usage, without a name.
      if (name !== undefined) names.set(id, name);
    }
    return names;
  }
}

function totalsView(t: UsageTotals) {
  return {
    requests: t.requests,
    inputTokens: t.inputTokens,
    outputTokens: t.outputTokens,
    cacheReadTokens: t.cacheReadTokens,
    cacheCreationTokens: t.cacheCreationTokens,
    costUsd: t.cost / 1e6,
  };
}

function budgetView(b: Budget) {
  return { id: b.id, scope: { kind: b.scope.kind, id: b.scope.id }, period: b.period, unit: b.unit, limit: b.limit, updatedAt: b.updatedAt, updatedBy: b.updatedBy };
}
