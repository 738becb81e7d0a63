import type { IncomingHttpHeaders } from 'node:http';
import type { Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { Place } from '../access/effective-policy.js';
import { getChannel } from '../access/workspaces-repo.js';
import { MODEL_HOST } from '../engines/model-connection.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ControlStore } from '../store/database.js';
import { applicableBudgets, budgetSpentText, NOTHING_SPENT, periodStart, spentAgainst, spentBudget, type Budget, type BudgetPeriod, type BudgetScope, type BudgetUnit, type Spent } from '../usage/budgets.js';
import { listBudgets } from '../usage/budgets-repo.js';
import { costMicroUsd, priceFor, type ModelPrice, type PriceTable } from '../usage/prices.js';
import { spentSince, usageEvent, type UsageEvent } from '../usage/usage-repo.js';
import { usageTap, type TapResult, type UsageTap } from '../usage/usage-tap.js';
import { UsageWriter } from '../usage/usage-writer.js';

/**
 * The model meter (DESIGN.md "Model access and usage", invariant 12): every
 * request of a session's listener to the model host — by host, whatever
 * bundle or connection let it through — is gated by the budgets that apply
 * to the listener's place before it is sent, and its response is tapped as
 * it passes (never held back) for the usage, written as one usage event when
 * the response ends or is cut off. Attribution is the listener's: the org
 * and place the proxy daemon gave it when it opened it, never anything the
 * request says. Listeners without a usage context (tagbox exec, the
 * standalone proxy) are not metered.
 *
 * Budgets are read at most a second old, and what was spent at most a second
 * old plus the usage this process has recorded since; before a request is
 * refused both are read afresh, so a raised limit lets the very next request
 * through. Requests in flight when a budget is reached can overshoot it.
 * A budget that cannot be checked fails closed (503, nothing sent).
 */
export interface UsageContext {
  orgId: string;
  place: Place;
}

export interface ModelMeterOptions {
  store: ControlStore;
  prices: PriceTable;
  logger?: Logger;
  /** How long an org's budget list is reused (ms). */
  budgetsTtlMs?: number;
  /** How long a place's spent amounts are reused (ms), besides the usage recorded here since. */
  spentTtlMs?: number;
  now?: () => Date;
}

/** Why a model request was refused for a budget: on the audit event, and (scope, period) on the blocked feed. */
export interface BudgetBlock {
  id: string;
  scope: BudgetScope;
  scopeId: string;
  period: BudgetPeriod;
  unit: BudgetUnit;
  limit: number;
  spent: number;
}

export type Gate =
  | { ok: true }
  | {
      ok: false;
      status: number;
      /** For the audit event and the blocked feed. */
      reason: string;
      /** What the engine is told, as the model API's own error message. */
      message: string;
      /** The Messages API's error type, so that the engine reads it as a refusal, not as a fault to retry. */
      errorType: 'permission_error' | 'api_error';
      budget?: BudgetBlock;
    };

/** What one metered response yields: its usage when found (for the audit event). */
export interface MeteredUsage {
  model: string;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheCreationTokens: number;
  costMicroUsd: number;
}

export interface Metering {
  /** Each chunk of the response body, after it was passed on. */
  write(chunk: Buffer): void;
  /** The body ended or was cut off: the usage event is queued (at once for an unencoded body), and its counts returned. Idempotent. */
  end(): Promise<MeteredUsage | undefined>;
}

const OPEN: Gate = { ok: true };
/** Decoded bytes read from one compressed response at most (the tap's own caps bound its memory; this bounds the work). */
const MAX_DECODED_BYTES = 64 * 1024 * 1024;
const MAX_CACHED_PLACES = 10_000;

interface SpentEntry {
  orgId: string;
  place: Place;
  at: number;
  /** When its UTC day ends (ms, on this process's clock). */
  until: number;
  dayStart: string;
  monthStart: string;
  needOrg: boolean;
  /** Read since the month began (else since the day did: its month amounts are the day's). */
  needMonth: boolean;
  spent: Spent;
}

export class ModelMeter {
  private readonly writer: UsageWriter;
  private readonly budgetsTtl: number;
  private readonly spentTtl: number;
  private readonly now: () => Date;
  private readonly budgets = new Map<string, { at: number; budgets: Budget[] }>();
  private readonly spent = new Map<string, SpentEntry>();
  private readonly prices = new Map<string, ModelPrice>();
  private readonly warnedEncodings = new Set<string>();

  constructor(private readonly options: ModelMeterOptions) {
    this.writer = new UsageWriter(options.store, options.logger);
    this.budgetsTtl = options.budgetsTtlMs ?? 1000;
    this.spentTtl = Math.min(options.spentTtlMs ?? 1000, 1000);
    this.now = options.now ?? (() => new Date());
  }

  /** Whether a request to `host` through a listener with this context is metered. */
  meters(usage: UsageContext | undefined, host: string): usage is UsageContext {
    return usage !== undefined && host === MODEL_HOST;
  }

  /**
   * Before a model request is sent: may it go? Answered at once (no promise)
   * when what it needs is cached and says yes: this runs for every model request.
   */
  gate(ctx: UsageContext): Gate | Promise<Gate> {
    const now = Date.now();
    const cached = this.budgets.get(ctx.orgId);
    if (cached && now - cached.at < this.budgetsTtl) {
      const budgets = applicableBudgets(cached.budgets, ctx.orgId, ctx.place);
      if (budgets.length === 0) return OPEN;
      const spent = this.cachedSpent(ctx, budgets, now);
      if (spent && !spentBudget(budgets, spent)) return OPEN;
    }
    return this.check(ctx);
  }

  private async check(ctx: UsageContext): Promise<Gate> {
    try {
      const budgets = applicableBudgets(await this.budgetsOf(ctx.orgId, false), ctx.orgId, ctx.place);
      if (budgets.length === 0) return OPEN;
      if (!spentBudget(budgets, await this.spentOf(ctx, budgets, false))) return OPEN;
      // About to refuse: make sure, from the database, with what this process wrote committed.
      await this.writer.flushed();
      const fresh = applicableBudgets(await this.budgetsOf(ctx.orgId, true), ctx.orgId, ctx.place);
      const spent = fresh.length > 0 ? await this.spentOf(ctx, fresh, true) : NOTHING_SPENT;
      const over = spentBudget(fresh, spent);
      if (!over) return OPEN;
      return await this.refusal(ctx, over, spentAgainst(over, spent));
    } catch (error) {
      // Fail closed: a budget that cannot be checked is not a budget that is open.
      return {
        ok: false,
        status: 503,
        reason: `the model budgets could not be checked: ${describeError(error)}`,
        message: 'Tagbox: the model budgets could not be checked; try again in a moment',
        errorType: 'api_error',
      };
    }
  }

  /** A tap for one model response through a listener with this context; undefined when its body cannot carry usage. */
  open(ctx: UsageContext, session: string | undefined, headers: IncomingHttpHeaders): Metering | undefined {
    const contentType = typeof headers['content-type'] === 'string' ? headers['content-type'] : undefined;
    const tap = usageTap(contentType);
    if (!tap) return undefined;
    const encoding = String(headers['content-encoding'] ?? 'identity').trim().toLowerCase();
    // Classes, not closures: this runs for every model answer.
    if (encoding === 'identity' || encoding === '') return new PlainMetering(this, ctx, session ?? '', tap);
    const decoder = decoderFor(encoding);
    if (!decoder) {
      // The proxy asks for an unencoded answer; an upstream that encodes anyway in a way we cannot read is not metered.
      if (!this.warnedEncodings.has(encoding) && this.warnedEncodings.size < 32) {
        this.warnedEncodings.add(encoding);
        this.options.logger?.warn({ encoding }, 'a model response in an encoding the meter cannot read: its usage is not recorded');
      }
      return undefined;
    }
    return new DecodedMetering(this, ctx, session ?? '', tap, decoder);
  }

  /** Everything recorded so far is committed (or logged as lost). */
  async close(): Promise<void> {
    await this.writer.flushed();
  }

  /** One answer's usage, as its metering read it: queued as a usage event, counted against the cached spend, returned for the audit event. */
  record(ctx: UsageContext, session: string, result: TapResult): MeteredUsage | undefined {
    if (!result.seen) return undefined;
    const model = result.model ?? 'unknown';
    const cost = costMicroUsd(result, this.priceOf(model));
    const event = usageEvent({
      orgId: ctx.orgId,
      sessionId: session,
      place: ctx.place,
      model,
      inputTokens: result.inputTokens,
      outputTokens: result.outputTokens,
      cacheReadTokens: result.cacheReadTokens,
      cacheCreationTokens: result.cacheCreationTokens,
      cost,
    });
    this.writer.add(event);
    // What is cached for the org's places counts it from now on (it is not in the sums read before it).
    for (const entry of this.spent.values()) addTo(entry, event);
    return { model, inputTokens: event.inputTokens, outputTokens: event.outputTokens, cacheReadTokens: event.cacheReadTokens, cacheCreationTokens: event.cacheCreationTokens, costMicroUsd: cost };
  }

  /** The price of a model, looked up once per name (the table is fixed for the process's life). */
  private priceOf(model: string): ModelPrice {
    let price = this.prices.get(model);
    if (!price) {
      price = priceFor(this.options.prices, model).price;
      if (this.prices.size > 1000) this.prices.clear();
      this.prices.set(model, price);
    }
    return price;
  }

  private async budgetsOf(orgId: string, fresh: boolean): Promise<Budget[]> {
    const cached = this.budgets.get(orgId);
    const now = Date.now();
    if (!fresh && cached && now - cached.at < this.budgetsTtl) return cached.budgets;
    const budgets = await listBudgets(this.options.store.db, orgId);
    this.budgets.set(orgId, { at: now, budgets });
    return budgets;
  }

  /** What was spent in the place, if it was read recently enough for these budgets (and in this UTC day). */
  private cachedSpent(ctx: UsageContext, budgets: Budget[], now: number): Spent | undefined {
    const entry = this.spent.get(placeKey(ctx));
    if (!entry || now - entry.at >= this.spentTtl || now >= entry.until) return undefined;
    if (!entry.needOrg && budgets.some((b) => b.scope.kind === 'org')) return undefined;
    if (!entry.needMonth && budgets.some((b) => b.period === 'month')) return undefined;
    return entry.spent;
  }

  private async spentOf(ctx: UsageContext, budgets: Budget[], fresh: boolean): Promise<Spent> {
    const now = Date.now();
    const cached = fresh ? undefined : this.cachedSpent(ctx, budgets, now);
    if (cached) return cached;
    const at = this.now();
    const dayStart = periodStart('day', at);
    const monthStart = periodStart('month', at);
    const needOrg = budgets.some((b) => b.scope.kind === 'org');
    const needMonth = budgets.some((b) => b.period === 'month');
    const spent = await spentSince(this.options.store.db, { orgId: ctx.orgId, place: ctx.place, dayStart, monthStart, needOrg, needMonth });
    // Good until the UTC day ends (a new day starts from nothing), or spentTtl.
    const until = Date.parse(dayStart) + 86_400_000 - (at.getTime() - now);
    const entry: SpentEntry = { orgId: ctx.orgId, place: ctx.place, at: now, until, dayStart, monthStart, needOrg, needMonth, spent };
    // Usage recorded here but not yet committed is not in what was read (one just committed may count twice, for a second at most: never none).
    for (const event of this.writer.pending) addTo(entry, event);
    if (this.spent.size >= MAX_CACHED_PLACES) this.sweep(now);
    this.spent.set(placeKey(ctx), entry);
    return entry.spent;
  }

  private sweep(now: number): void {
    for (const [key, entry] of this.spent) if (now - entry.at >= this.spentTtl) this.spent.delete(key);
    if (this.spent.size >= MAX_CACHED_PLACES) this.spent.clear();
  }

  private async refusal(ctx: UsageContext, budget: Budget, spent: number): Promise<Gate> {
    let channel = 'this channel';
    if (budget.scope.kind === 'channel') {
      const found = await getChannel(this.options.store.db, budget.scope.id).catch(() => undefined);
      if (found) channel = `#${found.name}`;
    }
    const text = budgetSpentText({ scope: budget.scope.kind, period: budget.period }, channel);
    return {
      ok: false,
      status: 403,
      reason: text,
      message: `Tagbox: ${text}`,
      errorType: 'permission_error',
      budget: { id: budget.id, scope: budget.scope.kind, scopeId: budget.scope.id, period: budget.period, unit: budget.unit, limit: budget.limit, spent },
    };
  }
}

/** An unencoded answer: its chunks go to the tap as they pass. */
class PlainMetering implements Metering {
  private ended: Promise<MeteredUsage | undefined> | undefined;

  constructor(
    private readonly meter: ModelMeter,
    private readonly ctx: UsageContext,
    private readonly session: string,
    private readonly tap: UsageTap,
  ) {}

  write(chunk: Buffer): void {
    this.tap.write(chunk);
  }

  end(): Promise<MeteredUsage | undefined> {
    return (this.ended ??= Promise.resolve(this.meter.record(this.ctx, this.session, this.tap.end())));
  }
}

/** A compressed answer: decoded (at most MAX_DECODED_BYTES) on the side, into the tap; the client gets it as it came. */
class DecodedMetering implements Metering {
  private ended: Promise<MeteredUsage | undefined> | undefined;
  private readonly decoded: Promise<void>;

  constructor(
    private readonly meter: ModelMeter,
    private readonly ctx: UsageContext,
    private readonly session: string,
    private readonly tap: UsageTap,
    private readonly decoder: Transform,
  ) {
    let bytes = 0;
    decoder.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > MAX_DECODED_BYTES) return void decoder.destroy();
      tap.write(chunk);
    });
    this.decoded = new Promise<void>((resolve) => {
      decoder.once('end', resolve);
      decoder.once('close', resolve);
      // A corrupt body ends the decoding, never the proxy.
      decoder.on('error', () => resolve());
    });
  }

  write(chunk: Buffer): void {
    if (!this.decoder.destroyed) this.decoder.write(chunk);
  }

  end(): Promise<MeteredUsage | undefined> {
    return (this.ended ??= (async () => {
      if (!this.decoder.destroyed) this.decoder.end();
      await this.decoded;
      return this.meter.record(this.ctx, this.session, this.tap.end());
    })());
  }
}

function placeKey(ctx: UsageContext): string {
  return ctx.place.kind === 'channel' ? `${ctx.orgId}|channel:${ctx.place.channelId}` : `${ctx.orgId}|dm:${ctx.place.memberId}`;
}

function samePlace(a: Place, b: Place): boolean {
  return a.kind === 'channel' ? b.kind === 'channel' && a.channelId === b.channelId : b.kind === 'dm' && a.memberId === b.memberId;
}

/** Counts one event into a cached entry: into the org's amounts if it is that org's, and the place's if it is that place's. */
function addTo(entry: SpentEntry, event: UsageEvent): void {
  if (event.orgId !== entry.orgId || event.createdAt < entry.monthStart) return;
  const tokens = event.inputTokens + event.outputTokens + event.cacheReadTokens + event.cacheCreationTokens;
  const today = event.createdAt >= entry.dayStart;
  const add = (side: 'org' | 'place') => {
    const amounts = entry.spent[side];
    amounts.month = { tokens: amounts.month.tokens + tokens, cost: amounts.month.cost + event.cost };
    if (today) amounts.day = { tokens: amounts.day.tokens + tokens, cost: amounts.day.cost + event.cost };
  };
  // Without an org budget the entry was read for its place alone: its org amounts are not used.
  if (entry.needOrg) add('org');
  if (samePlace(entry.place, event.place)) add('place');
}

function decoderFor(encoding: string): Transform | undefined {
  if (encoding === 'gzip' || encoding === 'x-gzip') return createGunzip();
  if (encoding === 'deflate') return createInflate();
  if (encoding === 'br') return createBrotliDecompress();
  return undefined;
}
