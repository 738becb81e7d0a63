import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Bundle } from '../policy/bundle-schema.js';
import { validateBundles } from '../policy/bundle-file.js';

/**
 * `tagbox proxy --workers N`: N processes serve the one listener, sharing its
 * connections round-robin (node:cluster: the primary accepts and hands each
 * connection to the next worker; a connection's requests all stay with it).
 * - The primary serves nothing but the metrics: it reads the bundle file and
 *   sends each worker the bundles — at its start, and to all of them on SIGHUP —
 *   so that every worker decides on the same policy (a worker that is restarted
 *   gets the current one, not what the file says by then).
 * - Each worker has its own runtime: vault, leaf cache (the same CA: any worker's
 *   leaf verifies alike), audit writer. The audit chain stays one chain: every
 *   append reads the head inside the store's write lock (audit/log.ts), whichever
 *   process holds it, so `tagbox audit verify` proves it as for one process.
 * - Caps (connections, tunnels) are each worker's.
 * - A worker that dies is replaced (after a second, so a crash loop does not spin).
 */
type ToWorker = { tagbox: 'policy'; bundles: unknown[] };
type ToPrimary = { tagbox: 'ready' } | { tagbox: 'listening'; port: number };

export interface PrimaryOptions {
  workers: number;
  /** Reads and validates the bundle file: at start and on every SIGHUP. */
  readBundles: () => Bundle[];
  logger: Logger;
  /** Called once, with the port the first worker listens on. */
  onListening: (port: number) => void;
  /** A worker ended before any listened (a port in use, a bad setting): nothing is replaced; the caller stops. */
  onStartFailed: (code: number) => void;
}

export interface ProxyPrimary {
  /** Every worker's metrics, summed (prom-client's cluster aggregation). */
  metrics: { contentType: string; metrics(): Promise<string> };
  close(): Promise<void>;
}

export function startPrimary(options: PrimaryOptions): ProxyPrimary {
  let bundles = options.readBundles();
  let stopping = false;
  let announced = false;
  const send = (worker: Worker) => worker.send({ tagbox: 'policy', bundles } satisfies ToWorker);
  const fork = () => {
    const worker = cluster.fork();
    worker.on('message', (message: ToPrimary) => {
      // Asked for once its listener is attached (a message sent before that would be lost).
      if (message?.tagbox === 'ready') send(worker);
      else if (message?.tagbox === 'listening' && !announced) {
        announced = true;
        options.onListening(message.port);
      }
    });
    worker.on('exit', (code, signal) => {
      if (stopping) return;
      // Its own error is on stderr already; forking again would only say it again.
      if (!announced) return options.onStartFailed(code || 1);
      options.logger.error({ pid: worker.process.pid, code, signal }, 'proxy worker exited; starting another');
      setTimeout(() => !stopping && fork(), 1000).unref();
    });
  };
  for (let i = 0; i < options.workers; i++) fork();

  const reload = () => {
    try {
      bundles = options.readBundles();
    } catch (error) {
      // A bad edit keeps the policy that was in force: nothing is widened or dropped by a typo.
      options.logger.error({ err: describeError(error) }, 'SIGHUP: the bundle file is invalid; keeping the current policy');
      return;
    }
    for (const worker of Object.values(cluster.workers ?? {})) if (worker) send(worker);
    options.logger.info({ bundles: bundles.map((b) => b.name) }, 'SIGHUP: policy reloaded in every worker');
  };
  process.on('SIGHUP', reload);
  const aggregator = new AggregatorRegistry();
  return {
    metrics: { contentType: aggregator.contentType, metrics: () => aggregator.clusterMetrics() },
    close: async () => {
      stopping = true;
      process.off('SIGHUP', reload);
      const all = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
      await Promise.all(
        all.map(
          (worker) =>
            new Promise<void>((resolve) => {
              if (worker.isDead()) return resolve();
              worker.once('exit', () => resolve());
              worker.process.kill('SIGTERM');
            }),
        ),
      );
    },
  };
}

/** A worker's side: the policy from the primary (first, and on every reload), and its port told back. */
export interface WorkerLink {
  /** The bundles the primary sent first. */
  firstBundles(): Promise<Bundle[]>;
  onBundles(apply: (bundles: Bundle[]) => void): void;
  listening(port: number, registry: Registry): void;
  /** Resolves when the primary is gone (the IPC channel closed). */
  orphaned: Promise<void>;
}

export function workerLink(logger: Logger): WorkerLink {
  let apply: ((bundles: Bundle[]) => void) | undefined;
  let first: ((bundles: Bundle[]) => void) | undefined;
  const firstBundles = new Promise<Bundle[]>((resolve) => (first = resolve));
  process.on('message', (message: ToWorker) => {
    if (message?.tagbox !== 'policy') return;
    let bundles: Bundle[];
    try {
      bundles = validateBundles(message.bundles, 'the policy from the primary');
    } catch (error) {
      logger.error({ err: describeError(error) }, 'proxy worker: the policy from the primary is invalid; keeping the current one');
      return;
    }
    if (first) {
      first(bundles);
      first = undefined;
    } else apply?.(bundles);
  });
  process.send?.({ tagbox: 'ready' } satisfies ToPrimary);
  return {
    firstBundles: () => firstBundles,
    onBundles: (fn) => (apply = fn),
    listening: (port, registry) => {
      AggregatorRegistry.setRegistries([registry]);
      // Constructing one is what makes prom-client answer the primary's requests in a worker.
      new AggregatorRegistry();
      process.send?.({ tagbox: 'listening', port } satisfies ToPrimary);
    },
    orphaned: new Promise((resolve) => process.once('disconnect', () => resolve())),
  };
}
