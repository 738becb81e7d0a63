import type { UsageRow } from './usage-data';

const COLOURS = ['#2f5bd3', '#1e7a45', '#c0671b', '#8a3fb8', '#b3261e', '#2a8c9e', '#7a7f88'];

/**
 * Tokens per day as stacked bars, one colour per channel or member (the
 * largest six, the rest as "others"). A picture only: the table beside it
 * says the same for screen readers, so the SVG is hidden from them.
 */
export function UsageChart({ days, rows }: { days: string[]; rows: UsageRow[] }) {
  const series = seriesOf(rows);
  const perDay = days.map((day) => {
    const parts = series.map((s) => rows.filter((r) => r.day === day && s.keys.has(r.key)).reduce((n, r) => n + r.inputTokens + r.outputTokens, 0));
    return { day, parts, total: parts.reduce((a, b) => a + b, 0) };
  });
  const max = Math.max(1, ...perDay.map((d) => d.total));
  const W = 720;
  const H = 220;
  const left = 56;
  const bottom = 28;
  const plotH = H - bottom - 10;
  const step = (W - left - 8) / Math.max(1, days.length);
  const bar = Math.max(2, step * 0.7);
  const ticks = [0, 0.5, 1].map((f) => Math.round(max * f));
  const labelEvery = Math.ceil(days.length / 8);
  return (
    <figure class="usage-figure">
      <svg viewBox={`0 0 ${W} ${H}`} class="usage-chart" aria-hidden="true" focusable="false">
        {ticks.map((t) => {
          const y = 10 + plotH - (t / max) * plotH;
          return (
            <g key={t}>
              <line x1={left} x2={W - 4} y1={y} y2={y} class="grid" />
              <text x={left - 6} y={y + 4} text-anchor="end" class="axis">
                {compact(t)}
              </text>
            </g>
          );
        })}
        {perDay.map((d, i) => {
          let y = 10 + plotH;
          const x = left + i * step + (step - bar) / 2;
          return (
            <g key={d.day}>
              {d.parts.map((v, j) => {
                const h = (v / max) * plotH;
                y -= h;
                return v > 0 ? <rect key={j} x={x} y={y} width={bar} height={h} fill={COLOURS[j % COLOURS.length]} /> : null;
              })}
              {i % labelEvery === 0 && (
                <text x={x + bar / 2} y={H - 8} text-anchor="middle" class="axis">
                  {d.day.slice(5)}
                </text>
              )}
            </g>
          );
        })}
      </svg>
      <figcaption>
        <ul class="legend">
          {series.map((s, j) => (
            <li key={s.label}>
              <span class="swatch" style={{ background: COLOURS[j % COLOURS.length] }} aria-hidden="true" />
              {s.label}
            </li>
          ))}
        </ul>
      </figcaption>
    </figure>
  );
}

function seriesOf(rows: UsageRow[]): Array<{ label: string; keys: Set<string> }> {
  const totals = new Map<string, { label: string; n: number }>();
  for (const r of rows) {
    const t = totals.get(r.key) ?? { label: r.label, n: 0 };
    t.n += r.inputTokens + r.outputTokens;
    totals.set(r.key, t);
  }
  const sorted = [...totals.entries()].sort((a, b) => b[1].n - a[1].n);
  const top = sorted.slice(0, 6).map(([key, t]) => ({ label: t.label, keys: new Set([key]) }));
  const rest = sorted.slice(6);
  if (rest.length) top.push({ label: `${rest.length} others`, keys: new Set(rest.map(([k]) => k)) });
  return top;
}

export function compact(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}
