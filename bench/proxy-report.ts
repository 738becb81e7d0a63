/**
 * The proxy bench's table: per case and connection count, the medians of the
 * rounds — requests/s, the ratio to squid's requests/s at the same count, the
 * p50 and p99 latency added over direct, and CPU microseconds per request of
 * the proxy's process tree, the load generator and the upstream. Then memory
 * per 1,000 idle tunnels per proxy.
 */
import type { IdleResult } from './proxy-idle.js';

export interface LoadResult {
  requests: number;
  errors: number;
  firstError?: string;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
  /** Microseconds in the measured window. */
  cpu: { proxy: number; generator: number; upstream: number };
}

/** Every round of one case at one connection count; a sentence for a case that could not run. */
export type Rounds = LoadResult[] | string;

export function median(values: number[]): number {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

const fmt = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '-');

interface Summary {
  rps: number;
  p50: number;
  p99: number;
  proxyCpu: number;
  generatorCpu: number;
  upstreamCpu: number;
  errors: number;
  firstError?: string;
}

function summarise(rounds: LoadResult[]): Summary {
  const per = (pick: (r: LoadResult) => number) => median(rounds.map((r) => (r.requests > 0 ? pick(r) / r.requests : NaN)));
  const firstError = rounds.find((r) => r.firstError)?.firstError;
  return {
    rps: median(rounds.map((r) => r.rps)),
    p50: median(rounds.map((r) => r.p50)),
    p99: median(rounds.map((r) => r.p99)),
    proxyCpu: per((r) => r.cpu.proxy),
    generatorCpu: per((r) => r.cpu.generator),
    upstreamCpu: per((r) => r.cpu.upstream),
    errors: rounds.reduce((s, r) => s + r.errors, 0),
    ...(firstError ? { firstError } : {}),
  };
}

const COLUMNS: Array<[string, number]> = [
  ['case', 22],
  ['conns', 6],
  ['req/s', 9],
  ['x squid', 9],
  ['+p50 ms', 9],
  ['+p99 ms', 9],
  ['proxy us/req', 14],
  ['gen us/req', 12],
  ['upstr us/req', 14],
  ['errors', 8],
];

const row = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(COLUMNS[i]![1]) : c.padStart(COLUMNS[i]![1]))).join('') + '\n';

/** results[case][connections] = rounds. `labels` gives each case's name in the table, in order. */
export function loadTable(results: Map<string, Map<number, Rounds>>, labels: Map<string, string>, levels: number[], isProxy: (name: string) => boolean): string {
  let out = row(COLUMNS.map(([h]) => h));
  out += `${'-'.repeat(COLUMNS.reduce((s, [, w]) => s + w, 0))}\n`;
  const notes: string[] = [];
  for (const level of levels) {
    const summary = (name: string) => {
      const r = results.get(name)?.get(level);
      return Array.isArray(r) && r.length > 0 ? summarise(r) : undefined;
    };
    const direct = summary('direct');
    const squid = summary('squid');
    for (const [name, label] of labels) {
      const rounds = results.get(name)?.get(level);
      if (rounds === undefined) continue;
      if (typeof rounds === 'string') {
        out += `${label.padEnd(COLUMNS[0]![1])}${String(level).padStart(COLUMNS[1]![1])}  skipped: ${rounds}\n`;
        continue;
      }
      const s = summarise(rounds);
      const added = (v: number, base: number | undefined) => (name === 'direct' || base === undefined ? '-' : fmt(v - base, 3));
      out += row([
        label,
        String(level),
        fmt(s.rps),
        squid ? fmt(s.rps / squid.rps, 2) : '-',
        added(s.p50, direct?.p50),
        added(s.p99, direct?.p99),
        isProxy(name) ? fmt(s.proxyCpu, 1) : '-',
        fmt(s.generatorCpu, 1),
        fmt(s.upstreamCpu, 1),
        String(s.errors),
      ]);
      if (s.firstError) notes.push(`  ${label} at ${level}: first error: ${s.firstError}`);
    }
  }
  return out + (notes.length > 0 ? `${notes.join('\n')}\n` : '');
}

export function idleTable(idle: Map<string, IdleResult | string>, labels: Map<string, string>): string {
  let out = `${'case'.padEnd(22)}${'tunnels'.padStart(9)}${'MiB / 1,000 idle tunnels'.padStart(26)}${'open ms'.padStart(10)}${'upstream conns'.padStart(16)}\n`;
  for (const [name, r] of idle) {
    const label = labels.get(name) ?? name;
    if (typeof r === 'string') {
      out += `${label.padEnd(22)}  skipped: ${r}\n`;
      continue;
    }
    out += `${label.padEnd(22)}${String(r.opened).padStart(9)}${fmt(r.perThousand / 1024 / 1024, 1).padStart(26)}${String(r.ms).padStart(10)}${String(r.upstreamConnections ?? '-').padStart(16)}\n`;
    if (r.failed > 0) out += `  ${r.failed} failed; first: ${r.firstError}\n`;
  }
  return out;
}
