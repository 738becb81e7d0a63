import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Place } from '../access/effective-policy.js';
import type { Database } from '../store/tables.js';
import { newTimeOrderedId } from '../util/ids.js';
import type { Spent } from './budgets.js';
import type { UsageCounts } from './usage-tap.js';

/**
 * Rows of `usage_events`: written by the proxy's meter (in batches), summed
 * for budgets (one indexed query per place) and aggregated for the API.
 */
export interface UsageEvent extends UsageCounts {
  id: string;
  orgId: string;
  sessionId: string;
  place: Place;
  model: string;
  /** micro-USD */
  cost: number;
  createdAt: string;
}

export type NewUsageEvent = Omit<UsageEvent, 'id' | 'createdAt'> & { createdAt?: string };

export function usageEvent(input: NewUsageEvent): UsageEvent {
  const now = Date.now();
  return {
    id: newTimeOrderedId(now),
    orgId: input.orgId,
    sessionId: input.sessionId,
    place: input.place,
    model: input.model,
    inputTokens: input.inputTokens,
    outputTokens: input.outputTokens,
    cacheReadTokens: input.cacheReadTokens,
    cacheCreationTokens: input.cacheCreationTokens,
    cost: input.cost,
    createdAt: input.createdAt ?? new Date(now).toISOString(),
  };
}

/** The row of one event: who pays follows from the place (the org for channel work, the member for their DMs). */
export function usageRow(e: UsageEvent) {
  return {
    id: e.id,
    org_id: e.orgId,
    session_id: e.sessionId,
    payer_kind: e.place.kind === 'channel' ? 'org' : 'member',
    payer_id: e.place.kind === 'channel' ? e.orgId : e.place.memberId,
    channel_id: e.place.kind === 'channel' ? e.place.channelId : null,
    member_id: e.place.kind === 'dm' ? e.place.memberId : null,
    model: e.model,
    input_tokens: e.inputTokens,
    output_tokens: e.outputTokens,
    cache_read_tokens: e.cacheReadTokens,
    cache_creation_tokens: e.cacheCreationTokens,
    cost: e.cost,
    created_at: e.createdAt,
  };
}

/** Inserted in statements of 100 rows (under every bound-parameter limit), in the caller's transaction if any. */
export async function insertUsageEvents(db: Kysely<Database>, events: readonly UsageEvent[]): Promise<void> {
  for (let i = 0; i < events.length; i += 100) await db.insertInto('usage_events').values(events.slice(i, i + 100).map(usageRow)).execute();
}

const TOKENS = sql`input_tokens + output_tokens + cache_read_tokens + cache_creation_tokens`;

/** A sum that is a number on both dialects (Postgres sums bigints as numeric, which pg hands over as text). */
function total(expr: RawBuilder<unknown>, when: RawBuilder<unknown>): RawBuilder<number> {
  return sql<number>`cast(coalesce(sum(case when ${when} then ${expr} else 0 end), 0) as bigint)`;
}

/**
 * What counts against the budgets of work in `place` since the month began
 * (and the day): one query over the org's index range, or — when no org
 * budget needs it — over the channel's or member's. Without a month budget
 * (`needMonth: false`) only the day is read: its month amounts are then the day's.
 */
export async function spentSince(
  db: Kysely<Database>,
  input: { orgId: string; place: Place | undefined; dayStart: string; monthStart: string; needOrg: boolean; needMonth?: boolean },
): Promise<Spent> {
  const { orgId, place, dayStart, monthStart } = input;
  // Without a place (the org's own status), the place's amounts are nothing.
  const inPlace = place === undefined ? sql`1 = 0` : place.kind === 'channel' ? sql`channel_id = ${place.channelId}` : sql`member_id = ${place.memberId}`;
  const today = sql`created_at >= ${dayStart}`;
  let query = db
    .selectFrom('usage_events')
    .select([
      total(TOKENS, sql`1 = 1`).as('org_month_tokens'),
      total(sql`cost`, sql`1 = 1`).as('org_month_cost'),
      total(TOKENS, today).as('org_day_tokens'),
      total(sql`cost`, today).as('org_day_cost'),
      total(TOKENS, inPlace).as('place_month_tokens'),
      total(sql`cost`, inPlace).as('place_month_cost'),
      total(TOKENS, sql`${inPlace} and ${today}`).as('place_day_tokens'),
      total(sql`cost`, sql`${inPlace} and ${today}`).as('place_day_cost'),
    ])
    .where('org_id', '=', orgId)
    .where('created_at', '>=', input.needMonth === false ? dayStart : monthStart);
  if (!input.needOrg && place) query = place.kind === 'channel' ? query.where('channel_id', '=', place.channelId) : query.where('member_id', '=', place.memberId);
  const row = await query.executeTakeFirstOrThrow();
  const n = (v: unknown) => Number(v ?? 0);
  return {
    org: { day: { tokens: n(row.org_day_tokens), cost: n(row.org_day_cost) }, month: { tokens: n(row.org_month_tokens), cost: n(row.org_month_cost) } },
    place: { day: { tokens: n(row.place_day_tokens), cost: n(row.place_day_cost) }, month: { tokens: n(row.place_month_tokens), cost: n(row.place_month_cost) } },
  };
}

export type UsageGrouping = 'org' | 'channel' | 'member';

export interface UsageTotals extends UsageCounts {
  requests: number;
  /** micro-USD */
  cost: number;
}

/**
 * The org's usage in [since, until), grouped: by org (everything), by channel
 * (channel work), or by member (DM work: what each member pays).
 */
/**
 * Usage summed per key (org, channel or member) in [since, until); with
 * `bucket: 'day'` per key and UTC day too (the console's chart), oldest day first.
 */
export async function aggregateUsage(
  db: Kysely<Database>,
  input: { orgId: string; by: UsageGrouping; since: string; until: string; bucket?: 'day' },
): Promise<Array<{ id: string; day?: string } & UsageTotals>> {
  const key = input.by === 'org' ? 'org_id' : input.by === 'channel' ? 'channel_id' : 'member_id';
  const all = sql`1 = 1`;
  // created_at is an ISO 8601 UTC string: its first ten characters are the UTC day, in both dialects.
  const day = sql<string>`substr(created_at, 1, 10)`;
  const byDay = input.bucket === 'day';
  const rows = await db
    .selectFrom('usage_events')
    .select([
      sql<string>`${sql.ref(key)}`.as('key'),
      (byDay ? day : sql<string>`''`).as('day'),
      sql<number>`count(*)`.as('requests'),
      total(sql`input_tokens`, all).as('input_tokens'),
      total(sql`output_tokens`, all).as('output_tokens'),
      total(sql`cache_read_tokens`, all).as('cache_read_tokens'),
      total(sql`cache_creation_tokens`, all).as('cache_creation_tokens'),
      total(sql`cost`, all).as('cost'),
    ])
    .where('org_id', '=', input.orgId)
    .where('created_at', '>=', input.since)
    .where('created_at', '<', input.until)
    .where(sql.ref(key), 'is not', null)
    .$if(byDay, (q) => q.groupBy(day).orderBy(day))
    .groupBy(sql.ref(key))
    .orderBy(sql.ref(key))
    .execute();
  return rows.map((r) => ({
    id: r.key,
    ...(byDay ? { day: r.day } : {}),
    requests: Number(r.requests),
    inputTokens: Number(r.input_tokens),
    outputTokens: Number(r.output_tokens),
    cacheReadTokens: Number(r.cache_read_tokens),
    cacheCreationTokens: Number(r.cache_creation_tokens),
    cost: Number(r.cost),
  }));
}

/** A session's usage rows, oldest first (for tests and for looking into one thread: not indexed, the proxy never reads it). */
export async function usageOfSession(db: Kysely<Database>, sessionId: string): Promise<UsageEvent[]> {
  const rows = await db.selectFrom('usage_events').selectAll().where('session_id', '=', sessionId).orderBy('created_at').orderBy('id').execute();
  return rows.map((r) => ({
    id: r.id,
    orgId: r.org_id,
    sessionId: r.session_id,
    place: r.channel_id !== null ? { kind: 'channel', channelId: r.channel_id } : { kind: 'dm', memberId: r.member_id! },
    model: r.model,
    inputTokens: Number(r.input_tokens),
    outputTokens: Number(r.output_tokens),
    cacheReadTokens: Number(r.cache_read_tokens),
    cacheCreationTokens: Number(r.cache_creation_tokens),
    cost: Number(r.cost),
    createdAt: r.created_at,
  }));
}
