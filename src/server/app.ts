import cookie from '@fastify/cookie';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Counter, Registry } from 'prom-client';
import type { AuditLog } from '../audit/log.js';
import type { Logger } from '../log.js';
import type { ControlStore } from '../store/database.js';
import type { SecretStore } from '../vault/secret-store.js';
import type { AccessAdminPort } from './access-port.js';
import { installAuth, tokenResolver } from './auth.js';
import type { ServerDeps } from './deps.js';
import { installErrorHandlers } from './error-handler.js';
import type { PrincipalResolver } from './principal.js';
import { accessRoutes } from './routes/access.js';
import { auditRoutes } from './routes/audit.js';
import { bundleRoutes } from './routes/bundles.js';
import { connectorRoutes } from './routes/connectors.js';
import { healthRoutes, type ReadinessCheck } from './routes/health.js';
import { memberRoutes } from './routes/members.js';
import { memoryRoutes } from './routes/memory.js';
import { orgRoutes } from './routes/org.js';
import { pluginRoutes } from './routes/plugins.js';
import { secretRoutes } from './routes/secrets.js';
import { tokenRoutes } from './routes/tokens.js';
import { usageRoutes } from './routes/usage.js';
import { workspaceRoutes } from './routes/workspaces.js';
import { webApp } from './web-app.js';
import { chatRoutes, type ChatDeps } from '../surfaces/web/chat-routes.js';
import { installCsrf } from './web-auth/csrf.js';
import { OidcProvider } from './web-auth/oidc-client.js';
import { OIDC_START_PATH, oidcRoutes } from './web-auth/oidc-routes.js';
import { webAuthRoutes } from './web-auth/routes.js';
import { sessionResolver } from './web-auth/session-resolver.js';
import { DEFAULT_WEB_CONFIG, type WebConfig } from './web-auth/web-config.js';

export interface ServerOptions {
  store: ControlStore;
  audit: AuditLog;
  access: AccessAdminPort;
  sealer: () => Promise<SecretStore>;
  logger: Logger;
  /** Extra readiness (the Agent Proxy child); the server itself is ready once listening. */
  readiness?: ReadinessCheck;
  /** Further principal resolvers after API tokens (browser sessions, later). */
  resolvers?: PrincipalResolver[];
  /** The session layer, for the chat API (absent: admin API only). */
  chat?: ChatDeps;
  /** The `web` section of tagbox.yaml (sign-in links, cookie sessions, OIDC); defaults when absent. */
  web?: WebConfig;
  /** agent.modelSecret, for what the effective access of a channel shows. */
  modelSecret?: string;
  /** Further route plugins under /api/v1 (schedules, ...). */
  plugins?: Array<(deps: ServerDeps) => (api: FastifyInstance) => Promise<void>>;
  /** Serve the web app at / from this directory (dist/web); absent: API only. */
  webRoot?: string;
  /** Plugins outside /api/v1 with their own parsing and auth (the Slack Events API's signed endpoint). */
  rootPlugins?: Array<(app: FastifyInstance) => Promise<void>>;
  /** slack.signingSecret is set (the workspace API allows the Events API mode). */
  slackSigningSecret?: boolean;
}

export const API_PREFIX = '/api/v1';

/**
 * The HTTP server: the admin API under /api/v1 (features as plugins, schemas
 * at the edge), its OpenAPI document, /healthz and /metrics. Returned not
 * listening, so tests can listen on port 0 and `tagbox up` on its own port.
 */
export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    // pino's Logger is a FastifyBaseLogger; the cast keeps the instance's default generics.
    loggerInstance: options.logger as FastifyBaseLogger,
    // Fastify's request log lines carry method and URL only: never headers or bodies (tokens, secret values).
    bodyLimit: 256 * 1024,
  });
  // Validation is zod's, in route.ts; the JSON Schemas are for the OpenAPI document.
  app.setValidatorCompiler(() => (data) => ({ value: data }));
  installErrorHandlers(app);
  // Cookies are parsed (an onRequest hook of the plugin) before auth reads them; then CSRF, after auth, for every route.
  await app.register(cookie);
  const web = options.web ?? DEFAULT_WEB_CONFIG;
  installAuth(app, [tokenResolver(options.store), sessionResolver(options.store, () => web.sessionIdleHours), ...(options.resolvers ?? [])]);
  app.decorateRequest('webSession', undefined);
  installCsrf(app, () => web);

  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tagbox_server_' });
  const requests = new Counter({ name: 'tagbox_server_requests_total', help: 'API requests by status class', labelNames: ['status'], registers: [registry] });
  app.addHook('onResponse', async (_request, reply) => requests.inc({ status: `${Math.floor(reply.statusCode / 100)}xx` }));

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'Tagbox API', version: '1', description: 'Admin API of Tagbox. Authenticate with `Authorization: Bearer tbx_...`.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  });

  const deps: ServerDeps = { store: options.store, audit: options.audit, access: options.access, sealer: options.sealer,
    ...(options.modelSecret ? { modelSecret: options.modelSecret } : {}),
    ...(options.slackSigningSecret ? { slackSigningSecret: true } : {}),
  };
  // OIDC is discovered in the background: a provider that is down never keeps the server from starting.
  const oidc = web.oidc ? new OidcProvider(web.oidc, options.logger) : undefined;
  oidc?.start();
  if (oidc) await app.register(oidcRoutes(deps, { web: () => web, provider: oidc }));
  await app.register(healthRoutes(options.readiness ?? (async () => ({ ready: true })), registry));
  await app.register(
    async (api) => {
      await api.register(orgRoutes(deps));
      await api.register(workspaceRoutes(deps));
      await api.register(bundleRoutes(deps));
      await api.register(accessRoutes(deps));
      await api.register(memberRoutes(deps));
      await api.register(pluginRoutes(deps));
      await api.register(secretRoutes(deps));
      await api.register(connectorRoutes(deps));
      await api.register(auditRoutes(deps));
      await api.register(tokenRoutes(deps));
      await api.register(webAuthRoutes(deps, { web: () => web, oidc: () => (oidc ? { name: oidc.settings.name, start: OIDC_START_PATH } : null) }));
      await api.register(memoryRoutes(deps));
      await api.register(usageRoutes(deps));
      if (options.chat) await api.register(chatRoutes(deps, options.chat));
      for (const plugin of options.plugins ?? []) await api.register(plugin(deps));
      api.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
    },
    { prefix: API_PREFIX },
  );
  for (const plugin of options.rootPlugins ?? []) await app.register(plugin);
  if (options.webRoot !== undefined) await app.register(webApp(options.webRoot));
  return app;
}
