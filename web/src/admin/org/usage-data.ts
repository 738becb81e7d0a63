import { get } from '../../api';

export interface UsageRow {
  day: string | null;
  key: string;
  label: string;
  inputTokens: number;
  outputTokens: number;
  costUsd: number | null;
  requests: number;
}

export interface Usage {
  rows: UsageRow[];
  totals: { inputTokens: number; outputTokens: number; costUsd: number | null; requests: number };
}

/**
 * Usage per day by channel or member (`GET /usage?by=&bucket=day`). Rows are
 * read leniently (`key`/`id`, `label`/`name`, `totals`/`total`) so that the
 * page keeps working while the server's per-day shape settles.
 */
export async function loadUsage(by: 'channel' | 'member', since: Date, until: Date): Promise<Usage> {
  const q = new URLSearchParams({ by, bucket: 'day', since: since.toISOString(), until: until.toISOString() });
  const body = await get<Record<string, unknown>>(`usage?${q.toString()}`);
  const rows = ((body.rows as Array<Record<string, unknown>>) ?? []).map(
    (r): UsageRow => ({
      day: typeof r.day === 'string' ? r.day.slice(0, 10) : null,
      key: String(r.key ?? r.id ?? '?'),
      label: String(r.label ?? r.name ?? r.key ?? r.id ?? 'unknown'),
      inputTokens: Number(r.inputTokens ?? 0),
      outputTokens: Number(r.outputTokens ?? 0),
      costUsd: typeof r.costUsd === 'number' ? r.costUsd : null,
      requests: Number(r.requests ?? 0),
    }),
  );
  const t = (body.totals ?? body.total ?? {}) as Record<string, unknown>;
  return {
    rows,
    totals: {
      inputTokens: Number(t.inputTokens ?? sum(rows, 'inputTokens')),
      outputTokens: Number(t.outputTokens ?? sum(rows, 'outputTokens')),
      costUsd: typeof t.costUsd === 'number' ? t.costUsd : null,
      requests: Number(t.requests ?? sum(rows, 'requests')),
    },
  };
}

const sum = (rows: UsageRow[], k: 'inputTokens' | 'outputTokens' | 'requests') => rows.reduce((n, r) => n + r[k], 0);

/** Each UTC day from since to until (inclusive), as YYYY-MM-DD. */
export function daysOf(since: Date, until: Date): string[] {
  const days: string[] = [];
  const d = new Date(Date.UTC(since.getUTCFullYear(), since.getUTCMonth(), since.getUTCDate()));
  while (d.getTime() <= until.getTime()) {
    days.push(d.toISOString().slice(0, 10));
    d.setUTCDate(d.getUTCDate() + 1);
  }
  return days;
}
