import cluster from 'node:cluster';
import type { Command } from 'commander';
import { AuditLog } from '../audit/log.js';
import { describeError, invalidInput } from '../errors.js';
import type { Logger } from '../log.js';
import type { Bundle } from '../policy/bundle-schema.js';
import { compilePolicy } from '../policy/compile.js';
import type { ProxyListener } from '../proxy/agent-proxy.js';
import { parseAuthority } from '../proxy/headers.js';
import { policyFromBundleFile } from '../proxy/policy-source.js';
import { startPrimary, workerLink } from '../proxy/proxy-workers.js';
import { startProxyRuntime } from '../proxy/runtime.js';
import { serveMetrics } from '../proxy/metrics-server.js';
import { contextFrom } from './context.js';
import { collect } from './options.js';

interface ProxyOptions {
  bundles: string;
  bundle: string[];
  listen: string;
  connectTo: string[];
  upstreamCa?: string;
  metrics?: string;
  workers?: string;
}

export function registerProxy(program: Command): void {
  program
    .command('proxy')
    .description('run the Agent Proxy alone, serving one policy to every client on one listener (SIGHUP re-reads the bundle file)')
    .requiredOption('--bundles <file>', 'bundle file (YAML)')
    .option('--bundle <name>', 'use only this bundle (repeatable)', collect, [])
    .requiredOption('--listen <host:port>', 'address to listen on')
    .option('--connect-to <HOST:PORT:TOHOST:TOPORT>', 'send connections for HOST:PORT to TOHOST:TOPORT (repeatable)', collect, [])
    .option('--upstream-ca <file>', 'extra CA (PEM) trusted for upstream TLS')
    .option('--metrics <host:port>', 'serve Prometheus metrics here')
    .option('--workers <n>', 'processes serving the listener (default: proxy.workers, 1)')
    .action(async (opts: ProxyOptions, command: Command) => {
      const listen = listenAddress(opts.listen, '--listen');
      const metricsAt = opts.metrics === undefined ? undefined : listenAddress(opts.metrics, '--metrics');
      const ctx = contextFrom(command);
      const workers = opts.workers === undefined ? ctx.config.proxy.workers : parseWorkers(opts.workers);
      const readBundles = () => policyFromBundleFile(opts.bundles, opts.bundle).bundles;
      if (workers > 1 && cluster.isPrimary) {
        // The one writer of the workers' audit events.
        const store = await ctx.openStore();
        try {
          return await runPrimary(workers, readBundles, new AuditLog(store), listen, metricsAt, ctx.logger);
        } finally {
          await store.close();
        }
      }

      // One process, or one worker of several (its policy then comes from the primary).
      const link = cluster.isWorker ? workerLink(ctx.logger) : undefined;
      const bundles = link ? await link.firstBundles() : readBundles();
      const runtime = await startProxyRuntime(ctx, {
        connectTo: opts.connectTo,
        ...(opts.upstreamCa ? { upstreamCa: opts.upstreamCa } : {}),
        listenAddresses: [listen.host],
        warmLeaves: true,
        ...(link ? { auditBatches: link.auditBatches } : {}),
      });
      const listener = await runtime.proxy.listen(listen, { policy: compilePolicy(bundles) });
      let metrics: Awaited<ReturnType<typeof serveMetrics>> | undefined;
      let reload: (() => void) | undefined;
      if (link) {
        link.onBundles((next) => listener.setPolicy(compilePolicy(next)));
        link.listening(listener.port!, runtime.proxy.metrics.registry);
      } else {
        metrics = metricsAt ? await serveMetrics(runtime.proxy.metrics.registry, metricsAt) : undefined;
        printListening(listen.host, listener.port!, metricsAt, metrics?.port);
        reload = () => reloadPolicy(listener, readBundles, ctx.logger);
        process.on('SIGHUP', reload);
      }
      await Promise.race([stopSignal(), ...(link ? [link.orphaned] : [])]);
      if (reload) process.off('SIGHUP', reload);
      await metrics?.close();
      await runtime.close();
      // A worker's IPC channel would keep it alive.
      if (link) process.exit(0);
    });
}

async function runPrimary(
  workers: number,
  readBundles: () => Bundle[],
  audit: AuditLog,
  listen: { host: string; port: number },
  metricsAt: { host: string; port: number } | undefined,
  logger: Logger,
): Promise<void> {
  let listening: (port: number) => void = () => {};
  let failed: (code: number) => void = () => {};
  const port = new Promise<number>((resolve) => (listening = resolve));
  const startFailed = new Promise<number>((resolve) => (failed = resolve));
  const primary = startPrimary({ workers, readBundles, audit, logger, onListening: (p) => listening(p), onStartFailed: (code) => failed(code) });
  const stopped = stopSignal();
  const first = await Promise.race([
    port.then((p) => ({ port: p })),
    startFailed.then((code) => ({ failed: code })),
    stopped.then(() => ({})),
  ]);
  if ('failed' in first) {
    await primary.close();
    process.exitCode = first.failed;
    return;
  }
  const metrics = metricsAt ? await serveMetrics(primary.metrics, metricsAt) : undefined;
  if ('port' in first) {
    printListening(listen.host, first.port, metricsAt, metrics?.port);
    logger.info({ workers }, 'proxy workers serving the listener');
  }
  await stopped;
  await metrics?.close();
  await primary.close();
}

function reloadPolicy(listener: ProxyListener, readBundles: () => Bundle[], logger: Logger): void {
  try {
    const bundles = readBundles();
    listener.setPolicy(compilePolicy(bundles));
    logger.info({ bundles: bundles.map((b) => b.name) }, 'SIGHUP: policy reloaded');
  } catch (error) {
    // A bad edit keeps the policy in force: nothing is widened or dropped by a typo.
    logger.error({ err: describeError(error) }, 'SIGHUP: the bundle file is invalid; keeping the current policy');
  }
}

function printListening(host: string, port: number, metricsAt: { host: string } | undefined, metricsPort: number | undefined): void {
  process.stdout.write(`listening on ${host.includes(':') ? `[${host}]` : host}:${port}\n`);
  if (metricsAt && metricsPort !== undefined) process.stdout.write(`metrics on http://${metricsAt.host}:${metricsPort}/metrics\n`);
}

function stopSignal(): Promise<void> {
  return new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}

function parseWorkers(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw invalidInput(`--workers: expected a whole number from 1 to 64, got "${value}"`);
  return n;
}

/** HOST:PORT to listen on; port 0 picks a free one (the line printed says which). */
function listenAddress(value: string, flag: string): { host: string; port: number } {
  const zero = /:0$/.test(value);
  const a = parseAuthority(zero ? value.replace(/:0$/, ':1') : value);
  if (!a || a.port === undefined) throw invalidInput(`${flag}: expected HOST:PORT, got "${value}"`);
  return { host: a.host, port: zero ? 0 : a.port };
}
