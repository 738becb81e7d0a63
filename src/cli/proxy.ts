import type { Command } from 'commander';
import { invalidInput } from '../errors.js';
import { parseAuthority } from '../proxy/headers.js';
import { policyFromBundleFile } from '../proxy/policy-source.js';
import { startProxyRuntime } from '../proxy/runtime.js';
import { serveMetrics } from '../proxy/metrics-server.js';
import { contextFrom } from './context.js';
import { collect } from './options.js';

export function registerProxy(program: Command): void {
  program
    .command('proxy')
    .description('run the Agent Proxy alone, serving one policy to every client on one listener')
    .requiredOption('--bundles <file>', 'bundle file (YAML)')
    .option('--bundle <name>', 'use only this bundle (repeatable)', collect, [])
    .requiredOption('--listen <host:port>', 'address to listen on')
    .option('--connect-to <HOST:PORT:TOHOST:TOPORT>', 'send connections for HOST:PORT to TOHOST:TOPORT (repeatable)', collect, [])
    .option('--upstream-ca <file>', 'extra CA (PEM) trusted for upstream TLS')
    .option('--metrics <host:port>', 'serve Prometheus metrics here')
    .action(async (opts: { bundles: string; bundle: string[]; listen: string; connectTo: string[]; upstreamCa?: string; metrics?: string }, command: Command) => {
      const listen = listenAddress(opts.listen, '--listen');
      const metricsAt = opts.metrics === undefined ? undefined : listenAddress(opts.metrics, '--metrics');
      const ctx = contextFrom(command);
      const { policy } = policyFromBundleFile(opts.bundles, opts.bundle);
      const runtime = await startProxyRuntime(ctx, { connectTo: opts.connectTo, ...(opts.upstreamCa ? { upstreamCa: opts.upstreamCa } : {}), listenAddresses: [listen.host], warmLeaves: true });
      const listener = await runtime.proxy.listen(listen, { policy });
      const metrics = metricsAt ? await serveMetrics(runtime.proxy, metricsAt) : undefined;
      process.stdout.write(`listening on ${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listener.port}\n`);
      if (metrics) process.stdout.write(`metrics on http://${metricsAt!.host}:${metrics.port}/metrics\n`);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await metrics?.close();
      await runtime.close();
    });
}

/** HOST:PORT to listen on; port 0 picks a free one (the line printed says which). */
function listenAddress(value: string, flag: string): { host: string; port: number } {
  const zero = /:0$/.test(value);
  const a = parseAuthority(zero ? value.replace(/:0$/, ':1') : value);
  if (!a || a.port === undefined) throw invalidInput(`${flag}: expected HOST:PORT, got "${value}"`);
  return { host: a.host, port: zero ? 0 : a.port };
}
