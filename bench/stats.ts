/** Percentiles and the one-line format the session benchmark prints them in. */

export interface Stats {
  n: number;
  p50: number;
  p99: number;
}

/** Nearest-rank percentiles (with 20 samples, p99 is the slowest one; with 50, too). */
export function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] ?? NaN;
  return { n: sorted.length, p50: at(0.5), p99: at(0.99) };
}

export const ms = (v: number) => `${v.toFixed(1)} ms`;

export const ratio = (s: Stats, baseline: Stats) => `${(s.p50 / baseline.p50).toFixed(2)}x`;

export const verdict = (s: Stats, targetMs: number) => `< ${targetMs} ms: ${s.p50 < targetMs ? 'met' : 'missed'}`;

export function line(name: string, s: Stats, baseline?: Stats, targetMs?: number): string {
  const versus = baseline ? `${ratio(s, baseline)} baseline` : '';
  const goal = targetMs ? `target ${verdict(s, targetMs)} (p50)` : '';
  return `${name.padEnd(38)} n=${String(s.n).padEnd(4)} p50 ${ms(s.p50).padStart(10)}  p99 ${ms(s.p99).padStart(10)}  ${versus.padEnd(16)} ${goal}`.trimEnd();
}
