import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { AuditEventInput } from '../audit/events.js';
import type { AuditLog } from '../audit/log.js';
import { describeError } from '../errors.js';
import { AuditWriter, type AuditBatches } from './audit-writer.js';
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
 *   leaf verifies alike), audit writer — whose batches the primary commits, one
 *   transaction for what all workers sent in the same turn, and acknowledges
 *   each once committed (a credential is still sent only after its use is
 *   durable). One writer: no two processes contend for the store's write lock
 *   on every request (on SQLite that cost a third of the credential path's
 *   throughput), and the chain is one chain as with one process.
 * - Caps (connections, tunnels) are each worker's.
 * - A worker that dies is replaced (after a second, so a crash loop does not spin).
 */
type ToWorker = { tagbox: 'policy'; bundles: unknown[] } | { tagbox: 'audited'; id: number; error?: string };
type ToPrimary = { tagbox: 'ready' } | { tagbox: 'listening'; port: number } | { tagbox: 'audit'; id: number; events: AuditEventInput[] };

export interface PrimaryOptions {
  workers: number;
  /** Reads and validates the bundle file: at start and on every SIGHUP. */
  readBundles: () => Bundle[];
  /** Where every worker's audit events are committed. */
  audit: AuditLog;
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
  // Batches of all workers that arrive in one turn share a transaction (the writer's group commit), in order;
  // each is acknowledged once committed, or told the error, so that its durable appends reject.
  const writer = new AuditWriter(options.audit, options.logger);
  const commit = (worker: Worker, id: number, events: AuditEventInput[]) => {
    const ack = (error?: string) => worker.isConnected() && worker.send({ tagbox: 'audited', id, ...(error ? { error } : {}) } satisfies ToWorker);
    writer.appendAll(events).then(() => ack(), (error: unknown) => ack(describeError(error)));
  };
  const fork = () => {
    const worker = cluster.fork();
    worker.on('message', (message: ToPrimary) => {
      if (message?.tagbox === 'audit') commit(worker, message.id, message.events);
      // Asked for once its listener is attached (a message sent before that would be lost).
      else if (message?.tagbox === 'ready') send(worker);
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
      // What the workers sent on their way out is committed before the caller closes the store.
      await writer.close();
    },
  };
}

/** A worker's side: the policy from the primary (first, and on every reload), its port told back, its audit committed there. */
export interface WorkerLink {
  /** The bundles the primary sent first. */
  firstBundles(): Promise<Bundle[]>;
  onBundles(apply: (bundles: Bundle[]) => void): void;
  listening(port: number, registry: Registry): void;
  /** Resolves when the primary is gone (the IPC channel closed). */
  orphaned: Promise<void>;
  /** The audit writer's batches, committed by the primary. */
  auditBatches: AuditBatches;
}

export function workerLink(logger: Logger): WorkerLink {
  let apply: ((bundles: Bundle[]) => void) | undefined;
  let first: ((bundles: Bundle[]) => void) | undefined;
  const firstBundles = new Promise<Bundle[]>((resolve) => (first = resolve));
  let nextBatch = 0;
  const batches = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();
  process.on('message', (message: ToWorker) => {
    if (message?.tagbox === 'audited') {
      const waiting = batches.get(message.id);
      batches.delete(message.id);
      if (message.error === undefined) waiting?.resolve();
      else waiting?.reject(new Error(`the primary could not commit the audit batch: ${message.error}`));
      return;
    }
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
    orphaned: new Promise((resolve) =>
      process.once('disconnect', () => {
        // Nothing can be committed any more: what waits fails (its requests are not sent).
        for (const waiting of batches.values()) waiting.reject(new Error('the primary is gone'));
        batches.clear();
        resolve();
      }),
    ),
    auditBatches: {
      appendMany: (events) =>
        new Promise<void>((resolve, reject) => {
          if (!process.connected) return reject(new Error('the primary is gone'));
          const id = nextBatch++;
          batches.set(id, { resolve, reject });
          process.send!({ tagbox: 'audit', id, events } satisfies ToPrimary);
        }),
    },
  };
}
