import { readFileSync } from 'node:fs';
import { AuditLog } from '../audit/log.js';
import { describeError, invalidInput } from '../errors.js';
import type { CliContext } from '../cli/context.js';
import type { ControlStore } from '../store/database.js';
import { openProxyVault, type ProxyVault } from '../vault/private/proxy-vault.js';
import { AgentProxy, type AgentProxyOptions, type ProxyLimits } from './agent-proxy.js';
import { AuditWriter, type AuditBatches } from './audit-writer.js';
import { loadOrCreateDeploymentCa } from './ca.js';
import { parseConnectTo } from './connect-to.js';
import { ModelMeter } from './model-meter.js';
import { priceTable } from '../usage/prices.js';

/**
 * The proxy process's wiring, shared by `tagbox proxy` and `tagbox exec`: the
 * deployment CA, the audit log, the vault (this process is the only one that
 * unlocks it), the model meter (prices from tagbox.yaml; it meters only
 * listeners opened with a usage context) and the upstream settings from
 * flags and tagbox.yaml.
 */
export interface ProxyRuntime {
  proxy: AgentProxy;
  store: ControlStore;
  caCertPem: string;
  close(): Promise<void>;
}

export interface ProxyRuntimeOptions {
  /** From --connect-to, added to upstream.connectTo. */
  connectTo?: string[];
  /** From --upstream-ca; overrides upstream.caFile. */
  upstreamCa?: string;
  listenAddresses?: string[];
  /** Long-running proxies mint leaves for known hosts ahead of time. */
  warmLeaves?: boolean;
  /** Blocked decisions of session listeners (see AgentProxyOptions.onBlocked). */
  onBlocked?: AgentProxyOptions['onBlocked'];
  /** What session listeners did on GitHub (see AgentProxyOptions.onGithub). */
  onGithub?: AgentProxyOptions['onGithub'];
  /** An open control store to use (`tagbox exec` opened it beside its sandbox); its caller closes it. */
  store?: ControlStore;
  /** Where the audit writer commits (default: this process's audit log); a worker's go to its primary. */
  auditBatches?: AuditBatches;
}

export async function startProxyRuntime(ctx: CliContext, options: ProxyRuntimeOptions = {}): Promise<ProxyRuntime> {
  const connectTo = parseConnectTo([...ctx.config.upstream.connectTo, ...(options.connectTo ?? [])], '--connect-to / upstream.connectTo');
  const caFile = options.upstreamCa ?? ctx.config.upstream.caFile;
  let extraCaPem: string | undefined;
  if (caFile) {
    try {
      extraCaPem = readFileSync(caFile, 'utf8');
    } catch (error) {
      throw invalidInput(`${options.upstreamCa ? '--upstream-ca' : 'upstream.caFile'}: cannot read ${caFile}: ${describeError(error)}`);
    }
    if (!extraCaPem.includes('-----BEGIN CERTIFICATE-----')) throw invalidInput(`${caFile}: expected a PEM certificate`);
  }

  const ca = await loadOrCreateDeploymentCa(ctx.paths.caDir);
  const store = options.store ?? (await ctx.openStore());
  // One group-committing writer for the proxy's egress events and the vault's
  // credential-use events: one transaction per batch, not one per event.
  const audit = new AuditWriter(options.auditBatches ?? new AuditLog(store), ctx.logger);
  let vault: ProxyVault | undefined;
  try {
    vault = await openProxyVault({
      home: ctx.home,
      config: { ...ctx.config, upstream: { ...ctx.config.upstream, connectTo: [...ctx.config.upstream.connectTo, ...(options.connectTo ?? [])], ...(caFile ? { caFile } : {}) } },
      audit,
      warn: (message) => ctx.logger.warn(message),
      ...(options.listenAddresses ? { selfAddresses: options.listenAddresses } : {}),
    });
  } catch (error) {
    // Fail closed: without the vault the proxy still serves, and blocks every
    // request that would need a credential.
    ctx.logger.warn({ err: describeError(error) }, 'vault unavailable: requests that need a credential will be blocked');
  }
  const meter = new ModelMeter({ store, prices: priceTable(ctx.config.usage.prices), logger: ctx.logger });
  const proxy = new AgentProxy({
    ca,
    audit,
    meter,
    ...(vault ? { resolver: vault.resolver } : {}),
    upstream: { connectTo, ...(extraCaPem ? { extraCaPem } : {}), ...(options.listenAddresses ? { listenAddresses: options.listenAddresses } : {}) },
    passthrough: ctx.config.proxy.passthrough,
    limits: proxyLimits(ctx.config.proxy),
    warmLeaves: options.warmLeaves ?? false,
    logger: ctx.logger,
    ...(options.onBlocked ? { onBlocked: options.onBlocked } : {}),
    ...(options.onGithub ? { onGithub: options.onGithub } : {}),
  });
  return {
    proxy,
    store,
    caCertPem: ca.certPem,
    close: async () => {
      await proxy.close();
      await vault?.close();
      await audit.close();
      if (!options.store) await store.close();
    },
  };
}

/** tagbox.yaml `proxy.*` -> the proxy's limits (unset per-session caps keep their defaults, clamped to a quarter of the global cap). */
export function proxyLimits(proxy: CliContext['config']['proxy']): Partial<ProxyLimits> {
  return {
    maxTunnels: proxy.maxTunnels,
    maxConnections: proxy.maxConnections,
    handshakeTimeoutMs: proxy.handshakeTimeoutMs,
    fdReserve: proxy.fdReserve,
    ...(proxy.maxTunnelsPerSession !== undefined ? { maxTunnelsPerSession: proxy.maxTunnelsPerSession } : {}),
    ...(proxy.maxConnectionsPerSession !== undefined ? { maxConnectionsPerSession: proxy.maxConnectionsPerSession } : {}),
  };
}
