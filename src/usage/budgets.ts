import type { Place } from '../access/effective-policy.js';

/**
 * Model spend budgets (invariant 12: enforced at the proxy, never trusted to
 * the engine): per org, channel or member, per UTC day or month, in tokens or
 * in cost. Pure: which budgets apply to a place, what counts against each,
 * and which one a request is over.
 *
 * What counts: an org's budget, all of the org's model use (channel and DM
 * work alike: it is the org's key); a channel's, the work in that channel; a
 * member's, that member's DM work (what they pay for). Tokens are input +
 * output + cache reads + cache writes; cost is micro-USD at the prices in
 * force when the usage was recorded.
 *
 * A budget is spent when what counts against it reaches its limit: the
 * request that crosses the limit was already sent (its size is known only
 * once it is answered), so it is the next one that is refused.
 */
export const BUDGET_SCOPES = ['org', 'channel', 'member'] as const;
export const BUDGET_PERIODS = ['day', 'month'] as const;
export const BUDGET_UNITS = ['tokens', 'cost'] as const;
export type BudgetScope = (typeof BUDGET_SCOPES)[number];
export type BudgetPeriod = (typeof BUDGET_PERIODS)[number];
export type BudgetUnit = (typeof BUDGET_UNITS)[number];

export interface Budget {
  id: string;
  orgId: string;
  scope: { kind: BudgetScope; id: string };
  period: BudgetPeriod;
  unit: BudgetUnit;
  /** Tokens, or micro-USD. */
  limit: number;
  updatedAt: string;
  updatedBy: string;
}

/** The most a limit may be: far beyond any real spend, and exact in a double. */
export const MAX_BUDGET_LIMIT = 1e15;

/** What counts against the budgets of one place: the org's use, and the place's (its channel's, or its member's DMs). */
export interface Spent {
  org: PeriodAmounts;
  place: PeriodAmounts;
}
export type PeriodAmounts = Record<BudgetPeriod, Amounts>;
export interface Amounts {
  tokens: number;
  /** micro-USD */
  cost: number;
}

export const NOTHING_SPENT: Spent = {
  org: { day: { tokens: 0, cost: 0 }, month: { tokens: 0, cost: 0 } },
  place: { day: { tokens: 0, cost: 0 }, month: { tokens: 0, cost: 0 } },
};

/** Where a UTC day or month began, as stored (ISO 8601). */
export function periodStart(period: BudgetPeriod, now: Date): string {
  const start = period === 'day' ? Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()) : Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
  return new Date(start).toISOString();
}

/** The budgets of `budgets` (the org's) that apply to work in `place`. */
export function applicableBudgets(budgets: readonly Budget[], orgId: string, place: Place): Budget[] {
  return budgets.filter((b) => {
    if (b.orgId !== orgId) return false;
    if (b.scope.kind === 'org') return b.scope.id === orgId;
    if (b.scope.kind === 'channel') return place.kind === 'channel' && b.scope.id === place.channelId;
    return place.kind === 'dm' && b.scope.id === place.memberId;
  });
}

export function spentAgainst(budget: Budget, spent: Spent): number {
  return spent[budget.scope.kind === 'org' ? 'org' : 'place'][budget.period][budget.unit];
}

/**
 * The spent budget a request is refused for, or undefined. When several are
 * spent, the one that lasts longest is named (a month before a day), then the
 * widest (the org before a channel or member): raising any other would not help.
 */
export function spentBudget(budgets: readonly Budget[], spent: Spent): Budget | undefined {
  const over = budgets.filter((b) => spentAgainst(b, spent) >= b.limit);
  over.sort((a, b) => rank(a) - rank(b) || a.id.localeCompare(b.id));
  return over[0];
}

function rank(b: Budget): number {
  return (b.period === 'month' ? 0 : 10) + BUDGET_SCOPES.indexOf(b.scope.kind);
}

/**
 * What the thread and the engine are told (without a final stop):
 * "the budget for #eng is spent for today; an admin can raise it".
 * `channel` is how the channel is named (`#eng`); a member's budget is "your budget" (it is only ever their DM).
 */
export function budgetSpentText(budget: { scope: BudgetScope; period: BudgetPeriod }, channel: string): string {
  const whose = budget.scope === 'org' ? "the org's budget" : budget.scope === 'channel' ? `the budget for ${channel}` : 'your budget';
  return `${whose} is spent for ${budget.period === 'day' ? 'today' : 'this month'}; an admin can raise it`;
}
