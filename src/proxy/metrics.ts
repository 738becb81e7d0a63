import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Prometheus metrics of one proxy process. */
export class ProxyMetrics {
  readonly registry = new Registry();
  readonly decisions = new Counter({ name: 'tagbox_proxy_decisions_total', help: 'Egress decisions by outcome', labelNames: ['outcome'], registers: [this.registry] });
  readonly duration = new Histogram({
    name: 'tagbox_proxy_request_duration_seconds',
    help: 'Time from request to the end of the response, by outcome',
    labelNames: ['outcome'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  // One child per outcome, bound once: a labelled update hashes its labels on every call.
  private readonly byOutcome = new Map<string, { decisions: ReturnType<Counter['labels']>; duration: ReturnType<Histogram['labels']> }>();

  /** One decision, its outcome and how long it took (the label set is bounded: the three outcomes). */
  observe(outcome: 'credential' | 'allowlist' | 'blocked', seconds: number): void {
    let bound = this.byOutcome.get(outcome);
    if (!bound) {
      bound = { decisions: this.decisions.labels(outcome), duration: this.duration.labels(outcome) };
      this.byOutcome.set(outcome, bound);
    }
    bound.decisions.inc();
    bound.duration.observe(seconds);
  }

  readonly leafCache = new Counter({ name: 'tagbox_proxy_leaf_cache_total', help: 'Leaf certificate lookups', labelNames: ['result'], registers: [this.registry] });
  readonly tunnels = new Gauge({ name: 'tagbox_proxy_open_tunnels', help: 'Open CONNECT tunnels', registers: [this.registry] });
  readonly connections = new Gauge({ name: 'tagbox_proxy_open_connections', help: 'Open client connections', registers: [this.registry] });
  readonly refusals = new Counter({ name: 'tagbox_proxy_cap_refusals_total', help: 'Connections and tunnels refused over their caps', labelNames: ['what'], registers: [this.registry] });
  /** The leaf cache's counts, read when scraped (see `trackLeaves`). */
  private leafStats: (() => { hits: number; misses: number; size: number }) | undefined;
  readonly leafCacheStats = new Gauge({
    name: 'tagbox_proxy_leaf_cache',
    help: 'Leaf certificate cache',
    labelNames: ['stat'],
    registers: [this.registry],
    collect: () => {
      const stats = this.leafStats?.();
      if (!stats) return;
      for (const stat of ['hits', 'misses', 'size'] as const) this.leafCacheStats.set({ stat }, stats[stat]);
    },
  });

  trackLeaves(stats: () => { hits: number; misses: number; size: number }): void {
    this.leafStats = stats;
  }
}
