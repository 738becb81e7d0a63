import fc from 'fast-check';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { blockedNotice, noticeKey } from '../../src/sessions/notices.js';
import { applicableBudgets, budgetSpentText, NOTHING_SPENT, periodStart, spentAgainst, spentBudget, type Budget, type Spent } from '../../src/usage/budgets.js';
import { costMicroUsd, DEFAULT_PRICES, priceFor, priceTable } from '../../src/usage/prices.js';

/** The pure half of budgets and prices: periods, which budgets apply, which one refuses, what it costs, what the thread is told. */
const ORG = 'org-1';
const budget = (over: Partial<Budget> & Pick<Budget, 'scope'>): Budget => ({ id: `b-${Math.random()}`, orgId: ORG, period: 'day', unit: 'tokens', limit: 100, updatedAt: '', updatedBy: 'admin', ...over });
const spent = (org: [number, number, number, number], place: [number, number, number, number]): Spent => ({
  org: { day: { tokens: org[0], cost: org[1] }, month: { tokens: org[2], cost: org[3] } },
  place: { day: { tokens: place[0], cost: place[1] }, month: { tokens: place[2], cost: place[3] } },
});

describe('periods (UTC)', () => {
  it('a day begins at 00:00Z and a month on the 1st, whatever the time zone of the host', () => {
    expect(periodStart('day', new Date('2025-03-31T23:59:59.999Z'))).toBe('2025-03-31T00:00:00.000Z');
    expect(periodStart('day', new Date('2025-04-01T00:00:00.000Z'))).toBe('2025-04-01T00:00:00.000Z');
    expect(periodStart('month', new Date('2025-03-31T23:59:59.999Z'))).toBe('2025-03-01T00:00:00.000Z');
    expect(periodStart('month', new Date('2024-02-29T12:00:00+14:00'))).toBe('2024-02-01T00:00:00.000Z');
    expect(periodStart('month', new Date('2025-01-01T00:30:00+01:00'))).toBe('2024-12-01T00:00:00.000Z');
  });

  it('the start is never after the time, and the day is inside the month', () => {
    fc.assert(
      fc.property(fc.date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }), (at) => {
        const day = periodStart('day', at);
        const month = periodStart('month', at);
        expect(day <= at.toISOString() && month <= day).toBe(true);
        expect(at.getTime() - Date.parse(day)).toBeLessThan(86_400_000);
      }),
    );
  });
});

describe('which budgets apply', () => {
  const orgDay = budget({ scope: { kind: 'org', id: ORG } });
  const eng = budget({ scope: { kind: 'channel', id: 'c-eng' } });
  const ops = budget({ scope: { kind: 'channel', id: 'c-ops' } });
  const alice = budget({ scope: { kind: 'member', id: 'm-alice' } });
  const otherOrg = budget({ orgId: 'org-2', scope: { kind: 'org', id: 'org-2' } });
  const all = [orgDay, eng, ops, alice, otherOrg];

  it('channel work: the org and that channel; a DM: the org and that member (never a member budget in a channel)', () => {
    expect(applicableBudgets(all, ORG, { kind: 'channel', channelId: 'c-eng' })).toEqual([orgDay, eng]);
    expect(applicableBudgets(all, ORG, { kind: 'dm', memberId: 'm-alice' })).toEqual([orgDay, alice]);
    expect(applicableBudgets(all, ORG, { kind: 'dm', memberId: 'm-bob' })).toEqual([orgDay]);
    // A channel whose id is a member's, or the reverse, is not confused.
    expect(applicableBudgets([budget({ scope: { kind: 'member', id: 'x' } })], ORG, { kind: 'channel', channelId: 'x' })).toEqual([]);
    expect(applicableBudgets([otherOrg, budget({ scope: { kind: 'org', id: 'org-2' } })], ORG, { kind: 'channel', channelId: 'c' })).toEqual([]);
  });

  it('each counts against its own amounts: the org its total, the place its own', () => {
    const s = spent([1, 2, 3, 4], [5, 6, 7, 8]);
    expect(spentAgainst(orgDay, s)).toBe(1);
    expect(spentAgainst({ ...orgDay, unit: 'cost', period: 'month' }, s)).toBe(4);
    expect(spentAgainst(eng, s)).toBe(5);
    expect(spentAgainst({ ...alice, period: 'month', unit: 'cost' }, s)).toBe(8);
  });
});

describe('which budget refuses', () => {
  it('none below its limit; spent when what counts reaches the limit (a limit of 0 stops everything)', () => {
    const b = budget({ scope: { kind: 'channel', id: 'c' }, limit: 10 });
    expect(spentBudget([b], spent([0, 0, 0, 0], [9, 0, 9, 0]))).toBeUndefined();
    expect(spentBudget([b], spent([0, 0, 0, 0], [10, 0, 10, 0]))).toBe(b);
    expect(spentBudget([{ ...b, limit: 0 }], NOTHING_SPENT)?.limit).toBe(0);
    expect(spentBudget([], spent([1e9, 1e9, 1e9, 1e9], [1e9, 1e9, 1e9, 1e9]))).toBeUndefined();
  });

  it('names the one that lasts longest (month before day), then the widest (org before channel or member)', () => {
    const channelDay = budget({ id: 'a', scope: { kind: 'channel', id: 'c' }, limit: 1 });
    const channelMonth = budget({ id: 'b', scope: { kind: 'channel', id: 'c' }, period: 'month', limit: 1 });
    const orgDay = budget({ id: 'c', scope: { kind: 'org', id: ORG }, limit: 1 });
    const orgMonthCost = budget({ id: 'd', scope: { kind: 'org', id: ORG }, period: 'month', unit: 'cost', limit: 1 });
    const all = spent([5, 5, 5, 5], [5, 5, 5, 5]);
    expect(spentBudget([channelDay, orgDay], all)).toBe(orgDay);
    expect(spentBudget([channelDay, channelMonth, orgDay], all)).toBe(channelMonth);
    expect(spentBudget([channelDay, channelMonth, orgDay, orgMonthCost], all)).toBe(orgMonthCost);
  });

  it('refuses exactly when some applicable budget is reached', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ kind: fc.constantFrom('org' as const, 'channel' as const), period: fc.constantFrom('day' as const, 'month' as const), unit: fc.constantFrom('tokens' as const, 'cost' as const), limit: fc.nat(100) }), { maxLength: 6 }),
        fc.tuple(fc.nat(120), fc.nat(120), fc.nat(120), fc.nat(120)),
        fc.tuple(fc.nat(120), fc.nat(120), fc.nat(120), fc.nat(120)),
        (specs, o, p) => {
          const budgets = specs.map((x, i) => budget({ id: String(i), scope: { kind: x.kind, id: x.kind === 'org' ? ORG : 'c' }, period: x.period, unit: x.unit, limit: x.limit }));
          const s = spent(o, p);
          const refused = spentBudget(budgets, s);
          expect(refused !== undefined).toBe(budgets.some((b) => spentAgainst(b, s) >= b.limit));
          if (refused) expect(spentAgainst(refused, s)).toBeGreaterThanOrEqual(refused.limit);
        },
      ),
    );
  });
});

describe('what the thread and the engine are told', () => {
  it.each([
    [{ scope: 'channel' as const, period: 'day' as const }, 'the budget for #eng is spent for today; an admin can raise it'],
    [{ scope: 'channel' as const, period: 'month' as const }, 'the budget for #eng is spent for this month; an admin can raise it'],
    [{ scope: 'org' as const, period: 'day' as const }, "the org's budget is spent for today; an admin can raise it"],
    [{ scope: 'member' as const, period: 'month' as const }, 'your budget is spent for this month; an admin can raise it'],
  ])('%o: %s', (b, text) => {
    expect(budgetSpentText(b, '#eng')).toBe(text);
  });

  it('the notice is that sentence, capitalised, with the channel as the server names it (neutralised)', () => {
    const facts = { host: 'api.anthropic.com', port: 443, reason: 'whatever the proxy said' };
    expect(blockedNotice({ ...facts, budget: { scope: 'channel', period: 'day' } }, { kind: 'channel', channelName: 'eng' })).toBe('The budget for #eng is spent for today; an admin can raise it.');
    expect(blockedNotice({ ...facts, budget: { scope: 'channel', period: 'month' } }, { kind: 'channel', channelName: 'eng' })).toBe('The budget for #eng is spent for this month; an admin can raise it.');
    expect(blockedNotice({ ...facts, budget: { scope: 'org', period: 'day' } }, { kind: 'channel', channelName: 'eng' })).toBe("The org's budget is spent for today; an admin can raise it.");
    expect(blockedNotice({ ...facts, budget: { scope: 'member', period: 'day' } }, { kind: 'dm' })).toBe('Your budget is spent for today; an admin can raise it.');
    expect(blockedNotice({ ...facts, budget: { scope: 'org', period: 'month' } }, { kind: 'dm' })).toBe("The org's budget is spent for this month; an admin can raise it.");
    expect(blockedNotice({ ...facts, budget: { scope: 'channel', period: 'day' } }, { kind: 'channel', channelName: '@channel\u001b[2J' })).toBe('The budget for #@\u200bchannel is spent for today; an admin can raise it.');
    // An ordinary block of the model host is still told as a block.
    expect(blockedNotice(facts, { kind: 'channel', channelName: 'eng' })).toMatch(/^Blocked a request to api\.anthropic\.com: /);
  });

  it('one notice per spent budget per turn, apart from the host notices', () => {
    const facts = { host: 'api.anthropic.com', port: 443, reason: 'r' };
    expect(noticeKey({ ...facts, budget: { scope: 'channel', period: 'day' } })).not.toBe(noticeKey(facts));
    expect(noticeKey({ ...facts, budget: { scope: 'channel', period: 'day' } })).toBe(noticeKey({ ...facts, reason: 'other', budget: { scope: 'channel', period: 'day' } }));
    expect(noticeKey({ ...facts, budget: { scope: 'channel', period: 'day' } })).not.toBe(noticeKey({ ...facts, budget: { scope: 'org', period: 'day' } }));
  });
});

describe('prices', () => {
  it('a model is priced by its own entry, else the longest entry that prefixes it at a dash, else default', () => {
    const table = priceTable();
    expect(priceFor(table, 'claude-sonnet-4-5-20250929').entry).toBe('claude-sonnet-4');
    expect(priceFor(table, 'claude-opus-4-1-20250805')).toEqual({ entry: 'claude-opus-4-1', price: { input: 15, output: 75, cacheRead: 1.5, cacheWrite: 18.75 } });
    expect(priceFor(table, 'claude-opus-4-5-20251101')).toEqual({ entry: 'claude-opus-4', price: { input: 5, output: 25, cacheRead: 0.5, cacheWrite: 6.25 } });
    expect(priceFor(table, 'claude-opus-4-20250514').price.input).toBe(15);
    expect(priceFor(table, 'claude-haiku-4-5').entry).toBe('claude-haiku-4');
    // Only at a dash: claude-sonnet-40 is not a Sonnet 4.
    expect(priceFor(table, 'claude-sonnet-40').entry).toBe('default');
    expect(priceFor(table, 'gpt-4').entry).toBe('default');
    expect(priceFor(table, undefined).entry).toBe('default');
    // An entry named like a built-in object key is just an entry.
    expect(priceFor(table, 'constructor').entry).toBe('default');
  });

  it('tagbox.yaml entries add to the defaults or replace them by name', () => {
    const table = priceTable({ 'claude-sonnet-4-5': { input: 1, output: 2, cacheRead: 0, cacheWrite: 0 }, default: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 } });
    expect(priceFor(table, 'claude-sonnet-4-5-20250929').price.input).toBe(1);
    expect(priceFor(table, 'claude-sonnet-4-20250514').price.input).toBe(3);
    expect(priceFor(table, 'unknown').price.output).toBe(0);
    expect(Object.keys(DEFAULT_PRICES)).toContain('default');
  });

  it('costs integer micro-USD: USD per million tokens is micro-USD per token', () => {
    const price = DEFAULT_PRICES['claude-sonnet-4']!;
    expect(costMicroUsd({ inputTokens: 1_000_000, outputTokens: 0, cacheReadTokens: 0, cacheCreationTokens: 0 }, price)).toBe(3_000_000);
    expect(costMicroUsd({ inputTokens: 1200, outputTokens: 57, cacheReadTokens: 300, cacheCreationTokens: 40 }, price)).toBe(3600 + 855 + 90 + 150);
    expect(costMicroUsd({ inputTokens: 1, outputTokens: 0, cacheReadTokens: 1, cacheCreationTokens: 0 }, price)).toBe(3);
    fc.assert(
      fc.property(fc.nat(1e7), fc.nat(1e7), fc.nat(1e7), fc.nat(1e7), (a, b, c, d) => {
        const cost = costMicroUsd({ inputTokens: a, outputTokens: b, cacheReadTokens: c, cacheCreationTokens: d }, DEFAULT_PRICES.default!);
        expect(Number.isSafeInteger(cost) && cost >= 0).toBe(true);
      }),
    );
  });

  it('usage.prices in tagbox.yaml is validated, naming the entry and field', () => {
    const env = {};
    const dir = mkdtempSync(join(tmpdir(), 'tagbox-prices-'));
    let n = 0;
    const load = (yaml: string) => {
      const file = join(dir, `tagbox-${(n += 1)}.yaml`);
      writeFileSync(file, yaml);
      return () => loadConfig({ file, explicit: true, env });
    };
    expect(load('usage:\n  prices:\n    my-model: {input: 1, output: 2, cacheRead: 0.1, cacheWrite: 1.25}\n')().config.usage.prices).toEqual({ 'my-model': { input: 1, output: 2, cacheRead: 0.1, cacheWrite: 1.25 } });
    expect(load('usage:\n  prices:\n    my-model: {input: -1, output: 2, cacheRead: 0.1, cacheWrite: 1.25}\n')).toThrow(/:3: usage\.prices\.my-model\.input: expected USD per million tokens, 0 or more/);
    expect(load('usage:\n  prices:\n    my-model: {input: 1, output: 2, cacheRead: 0.1}\n')).toThrow(/usage\.prices\.my-model\.cacheWrite: expected USD per million tokens \(a number\)/);
    expect(load('usage:\n  prices:\n    my-model: {input: 1, output: 2, cacheRead: 0.1, cacheWrite: 1, batch: 3}\n')).toThrow(/usage\.prices\.my-model: unknown key "batch"/);
    expect(load('usage:\n  prices:\n    "bad name": {input: 1, output: 2, cacheRead: 0.1, cacheWrite: 1}\n')).toThrow(/usage\.prices\.bad name: expected a model name/);
    expect(load('usage:\n  price: {}\n')).toThrow(/usage: unknown key "price"/);
    expect(loadConfig({ file: '/nonexistent/tagbox.yaml', explicit: false, env: { TAGBOX_USAGE_PRICES: '{"m":{"input":1,"output":1,"cacheRead":1,"cacheWrite":1}}' } }).config.usage.prices.m).toEqual({ input: 1, output: 1, cacheRead: 1, cacheWrite: 1 });
    expect(() => loadConfig({ file: '/nonexistent/tagbox.yaml', explicit: false, env: { TAGBOX_USAGE_PRICES: 'cheap' } })).toThrow(/TAGBOX_USAGE_PRICES \(usage\.prices\)/);
    rmSync(dir, { recursive: true, force: true });
  });
});
