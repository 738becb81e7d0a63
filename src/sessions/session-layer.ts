import type { AuditLog } from '../audit/log.js';
import type { TagboxConfig } from '../config/schema.js';
import { EngineRegistry, type Engine } from '../engines/engine.js';
import { shellEngine } from '../engines/shell.js';
import type { Logger } from '../log.js';
import type { SandboxLimits } from '../sandbox/limits.js';
import type { SandboxProvider } from '../sandbox/types.js';
import type { ControlStore } from '../store/database.js';
import { EventHub } from './event-hub.js';
import { registerInstance, type Instance } from './instances.js';
import { SessionSandboxes, type ProxyListeners, type SessionSandboxesOptions } from './session-sandboxes.js';
import { SessionService } from './session-service.js';
import { TurnRunner } from './turn-runner.js';

export interface SessionLayerOptions {
  store: ControlStore;
  audit: AuditLog;
  proxy: ProxyListeners;
  provider: SandboxProvider;
  agent: TagboxConfig['agent'];
  logger: Logger;
  /** Engines besides the built-in `shell` (the installed `claude`; tests add their own). */
  engines?: Engine[];
  /** The engine of new threads when agent.engine names none (see engines/installed.ts). */
  defaultEngine?: string;
  /** Plugins of a session's place, extracted on the host (mounted read-only into its sandbox). */
  pluginsFor?: SessionSandboxesOptions['pluginsFor'];
  filesFor?: SessionSandboxesOptions['filesFor'];
  limits?: Partial<SandboxLimits>;
  pollMs?: number;
}

export interface SessionLayer {
  service: SessionService;
  hub: EventHub;
  runner: TurnRunner;
  sandboxes: SessionSandboxes;
  engines: EngineRegistry;
  instance: Instance;
  stop(): Promise<void>;
}

/**
 * The spine, assembled: Invocation -> SessionService (session, message,
 * queued turn) -> TurnRunner (claim, slot, sandbox) -> SessionSandboxes
 * (proxy listener, sandbox, engine state) -> Engine -> back into the thread.
 */
export async function startSessionLayer(options: SessionLayerOptions): Promise<SessionLayer> {
  const { store, audit, agent, logger } = options;
  const engines = new EngineRegistry([shellEngine({ maxReplyBytes: agent.maxReplyBytes }), ...(options.engines ?? [])]);
  const wanted = agent.engine ?? options.defaultEngine;
  const defaultEngine = wanted && engines.get(wanted) ? wanted : 'shell';
  if (agent.engine && !engines.get(agent.engine)) logger.warn(`agent.engine is "${agent.engine}", which is not installed here; new threads use the shell engine`);
  const instance = await registerInstance(store.db);
  const hub = new EventHub();
  const sandboxes = new SessionSandboxes({
    provider: options.provider,
    proxy: options.proxy,
    store,
    audit,
    instanceId: instance.id,
    idleMs: agent.idleSeconds * 1000,
    logger,
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.pluginsFor ? { pluginsFor: options.pluginsFor } : {}),
    ...(options.filesFor ? { filesFor: options.filesFor } : {}),
    // Made below; called only once turns run.
    onNotice: (sessionId, text, turnId) => service.emit(sessionId, 'notice', { kind: 'memory', text }, turnId),
  });
  // The service wakes the runner, which posts through the service: one is made first.
  const wake: { runner?: TurnRunner } = {};
  const service = new SessionService({
    store,
    audit,
    hub,
    defaultEngine,
    maxMessageBytes: agent.maxMessageBytes,
    onQueued: () => wake.runner?.kick(),
    onCancel: (turnId, by) => wake.runner?.cancelLocal(turnId, by),
  });
  const runner = new TurnRunner({
    store,
    audit,
    service,
    sandboxes,
    engines,
    instance,
    logger,
    turnTimeoutMs: agent.turnTimeoutSeconds * 1000,
    maxSandboxesPerOrg: agent.maxSandboxesPerOrg,
    maxReplyBytes: agent.maxReplyBytes,
    progressBytesPerSecond: agent.progressBytesPerSecond,
    ...(options.pollMs ? { pollMs: options.pollMs } : {}),
  });
  wake.runner = runner;
  runner.start();
  // Each request the proxy blocked for a session: one notice per host per turn in its thread.
  // And what sessions did on GitHub: recorded as what the turn left, told in the thread.
  const feed = options.proxy.subscribeFeed?.(
    (event) => {
      runner.blocked(event.session, event).catch((error: unknown) => logger.warn({ err: error }, 'could not post a blocked-host notice'));
    },
    (event) => {
      runner.github(event).catch((error: unknown) => logger.warn({ err: error }, 'could not record a GitHub push or pull request'));
    },
  );
  return {
    service,
    hub,
    runner,
    sandboxes,
    engines,
    instance,
    stop: async () => {
      feed?.close();
      await runner.stop();
    },
  };
}
