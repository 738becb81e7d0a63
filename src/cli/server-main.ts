import type { Command } from 'commander';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { SandboxProvider } from '../sandbox/types.js';
import { AccessAdmin } from '../access/admin-service.js';
import { AuditLog } from '../audit/log.js';
import { buildServer } from '../server/app.js';
import { firstRun } from '../server/first-run.js';
import { startHousekeeping } from '../server/housekeeping.js';
import { unavailable } from '../server/http-errors.js';
import { ProxyControl } from '../server/proxy-control.js';
import { EXEC_SOCKET } from '../server/exec-protocol.js';
import { ExecService } from '../server/exec-service.js';
import { createBubblewrapProvider } from '../sandbox/bubblewrap-provider.js';
import { startSessionLayer, type SessionLayer } from '../sessions/session-layer.js';
import type { ProxyListeners } from '../sessions/session-sandboxes.js';
import { contextFrom } from './context.js';
import { installedEngines } from '../engines/installed.js';
import { pluginsForPlace } from '../plugins/session-plugins.js';
import { writeOwnerToken } from './owner-token.js';
import { scheduleRoutes } from '../server/routes/schedules.js';
import { Scheduler } from '../surfaces/schedules/scheduler.js';
import { parsePort } from './options.js';
import { WEB_ROOT } from '../server/web-app.js';
import { signInUrl } from '../server/web-auth/web-config.js';
import { slackEventsEndpoint } from '../surfaces/slack/events-endpoint.js';
import { SlackSurface } from '../surfaces/slack/slack-surface.js';
import { FILES_INSIDE, sessionFiles } from '../surfaces/slack/slack-files.js';


/** The server child's life: see server-daemon.ts. */
export async function runServer(opts: { control: string; port?: string }, command: Command): Promise<void> {
  // Sandboxes' host files must be readable by the sandbox's own uid (their
  // directories keep everyone else out); everything private here is created
  // with an explicit mode (the database is pre-created by the launcher).
  process.umask(0o022);
  const ctx = contextFrom(command, { createHome: false });
  const port = opts.port === undefined ? ctx.config.server.port : parsePort(opts.port);
  const store = await ctx.openStore();
  const audit = new AuditLog(store);
  const access = new AccessAdmin(store, audit);
  const first = await firstRun(store, access, audit, { signInLinkHours: ctx.config.web.signInLinkHours });
  const proxy = new ProxyControl(opts.control);
  let proxyEverReady = false;
  const housekeeping = startHousekeeping({ store, access, orgId: first.org.id, home: ctx.home, logger: ctx.logger });
  if (first.ownerToken) writeOwnerToken(ctx.paths.ownerToken, first.ownerToken, ctx.logger);
  // The spine: chat -> session -> sandbox -> Agent Proxy. Without a usable
  // sandbox (no bubblewrap) the API still serves; turns fail saying why.
  const provider = await createBubblewrapProvider({ home: ctx.home }).catch((error: unknown) => {
    ctx.logger.error({ err: error }, 'sandboxes are unavailable: turns will fail until this is fixed (see `tagbox doctor`)');
    return unavailableProvider(error);
  });
  const { engines, defaultEngine } = installedEngines(ctx.config.agent, ctx.logger);
  const sessions: SessionLayer = await startSessionLayer({
    store,
    audit,
    proxy: waitingForProxy(proxy),
    provider,
    agent: ctx.config.agent,
    logger: ctx.logger,
    engines,
    defaultEngine,
    // A session's plugins, extracted once per digest, are mounted read-only into its sandbox.
    pluginsFor: (session) => pluginsForPlace(store, session.place, provider.mountSourceDir('plugins')),
    // Files shared with the agent in a Slack thread (fetched through the proxy) are in /workspace/slack-files.
    filesFor: async (session) => ({ dir: FILES_INSIDE, files: await sessionFiles(store.db, session.id) }),
  });
  // Schedules post through the same entry point as a person (an Invocation); each firing is claimed in the store.
  const scheduler = new Scheduler({ store, audit, port: sessions.service, logger: ctx.logger, graceSeconds: ctx.config.schedules.graceSeconds });
  scheduler.start();
  // Slack: the same entry point, and its Web API reached only through the proxy's listener for each workspace.
  const slack = new SlackSurface({ store, port: sessions.service, hub: sessions.hub, proxy, runDir: ctx.paths.sockets, config: ctx.config.slack, logger: ctx.logger });
  const app = await buildServer({
    store,
    audit,
    access,
    logger: ctx.logger,
    web: ctx.config.web,
    sealer: async () => {
      if (!proxyEverReady && (await proxy.ping()) === undefined) {
        throw unavailable('the Agent Proxy (and with it the vault) is still starting; try again in a moment', 'vault_starting');
      }
      proxyEverReady = true;
      return proxy.secrets;
    },
    ...(ctx.config.agent.modelSecret ? { modelSecret: ctx.config.agent.modelSecret } : {}),
    chat: { service: sessions.service, hub: sessions.hub, engines: sessions.engines.names() },
    plugins: [(deps) => scheduleRoutes(deps, { maxPromptBytes: ctx.config.agent.maxMessageBytes })],
    webRoot: WEB_ROOT,
    rootPlugins: [slackEventsEndpoint({ signingSecret: ctx.config.slack.signingSecret, receive: (team, payload) => slack.receiveHttp(team, payload) })],
    ...(ctx.config.slack.signingSecret ? { slackSigningSecret: true } : {}),
    readiness: async () => {
      const pid = await proxy.ping();
      return { ready: pid !== undefined, detail: { proxy: pid !== undefined ? 'ready' : 'starting' } };
    },
  });
  // `tagbox exec` hands its command here when Tagbox is up (exec-service.ts): served once the proxy is.
  const exec = provider.name === 'unavailable' ? undefined : new ExecService({ socketPath: join(ctx.paths.sockets, EXEC_SOCKET), provider, proxy, audit, logger: ctx.logger });
  const stopped = new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
    process.stdin.on('end', resolve).on('close', resolve).resume();
  });
  try {
    await app.listen({ host: ctx.config.server.host, port });
    const address = app.server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const url = `http://${host}:${address.port}`;
    const proxyPid = await Promise.race([proxy.waitReady(60_000), stopped.then(() => undefined)]);
    proxyEverReady = proxyEverReady || proxyPid !== undefined;
    if (proxyPid !== undefined) {
      await exec?.listen().catch((error: unknown) => ctx.logger.warn({ err: error }, '`tagbox exec` cannot hand commands to this server: they run on their own'));
    }
    // Connects every Slack workspace (retrying those that fail) and keeps following the store for new ones.
    await slack.start();
    const out: string[] = [`Tagbox is up at ${url}`, `  Web app: ${url}/`, `  API: ${url}/api/v1/  (OpenAPI: ${url}/api/v1/openapi.json)`];
    out.push(proxyPid !== undefined ? `  Agent Proxy: ready, pid ${proxyPid}` : '  Agent Proxy: not ready yet (see the log); /healthz answers 503 until it is');
    out.push(`  Talk to the agent (in #general): npx tagbox chat "uname -a"`);
    if (first.ownerToken) {
      out.push('', 'First run: created the org and its first Owner.');
      if (first.ownerSignInToken) {
        const hours = ctx.config.web.signInLinkHours;
        out.push(
          `Open this one-time link to sign in as the Owner (valid ${hours} h; later: npx tagbox login-link --member ${first.ownerMemberId}):`,
          '',
          `    ${signInUrl(ctx.config.web.publicUrl ?? url, first.ownerSignInToken)}`,
        );
      }
      out.push(
        '',
        "For scripts and the API, the Owner's one-time API token; it is shown only now",
        'and cannot be recovered (create more with POST /api/v1/tokens):',
        '',
        `  ${first.ownerToken}`,
        '',
        `  curl -H "Authorization: Bearer ${first.ownerToken}" ${url}/api/v1/org`,
      );
    }
    process.stdout.write(`${out.join('\n')}\n`);
    await stopped;
  } finally {
    // Also on a failure (a port in use): nothing may keep this process alive afterwards.
    process.stdin.destroy();
    await app.close();
    await exec?.close();
    await slack.stop();
    await scheduler.stop();
    await sessions.stop();
    await housekeeping.stop();
    await store.close();
  }
  process.exit(0);
}

/**
 * The proxy as turns see it: a turn that starts while the proxy is still
 * starting (queued turns run at once after a restart) or being restarted by
 * the supervisor waits for it a while, rather than failing its message; it
 * still never builds a sandbox without it (fail closed after the wait).
 */
export const PROXY_WAIT_MS = 30_000;

function waitingForProxy(proxy: ProxyControl): ProxyListeners {
  return {
    openListener: (session, socketPath, place) => proxy.openListener(session, socketPath, place),
    closeListener: (session) => proxy.closeListener(session),
    caCert: () => proxy.caCert(),
    ping: () => proxy.waitReady(PROXY_WAIT_MS),
    subscribeFeed: (onBlocked, onGithub) => proxy.subscribeFeed(onBlocked, onGithub),
  };
}

function unavailableProvider(error: unknown): SandboxProvider {
  const fail = (): never => {
    throw error;
  };
  return { name: 'unavailable', create: async () => fail(), exec: fail, release: async () => undefined, proxySocketPath: fail, mountSourceDir: fail };
}

