import { z } from 'zod';

/**
 * tagbox.yaml, in one place. Every key is also settable from the environment:
 * the key path in SCREAMING_SNAKE_CASE behind `TAGBOX_`, for example
 * `upstream.connectTo` -> `TAGBOX_UPSTREAM_CONNECT_TO` (lists are comma-separated).
 * Later issues add their sections here.
 */

/** curl's --connect-to: HOST:PORT:TOHOST:TOPORT. IPv6 hosts go in brackets. */
export const CONNECT_TO_PATTERN = /^(\[[0-9a-fA-F:.]+\]|[^:\s[\]]+):(\d{1,5}):(\[[0-9a-fA-F:.]+\]|[^:\s[\]]+):(\d{1,5})$/;

const port = z.number().int().min(1).max(65535);

/** USD per million tokens of one model (see usage/prices.ts). */
const usdPerMillion = z.number({ error: 'expected USD per million tokens (a number)' }).min(0, 'expected USD per million tokens, 0 or more').max(10_000, 'expected USD per million tokens, at most 10000');
const modelPrice = z.object({ input: usdPerMillion, output: usdPerMillion, cacheRead: usdPerMillion, cacheWrite: usdPerMillion }).strict();
const MODEL_KEY_EXPECTED = 'expected a model name such as claude-sonnet-4 (a prefix of the API model ids it prices) or "default"';
const modelKey = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:@/+-]{0,127}$/, MODEL_KEY_EXPECTED);

const connectTo = z
  .string()
  .regex(CONNECT_TO_PATTERN, 'expected HOST:PORT:TOHOST:TOPORT (curl --connect-to form)')
  .refine((v) => v.split(':').filter((p) => /^\d+$/.test(p)).every((p) => Number(p) >= 1 && Number(p) <= 65535), {
    message: 'ports must be 1-65535',
  });

/** An http(s) origin with no path: where browsers reach this server (sign-in links, cookies, OIDC redirect). */
const publicUrl = z
  .string()
  .refine((v) => {
    try {
      const u = new URL(v);
      return (u.protocol === 'http:' || u.protocol === 'https:') && u.pathname === '/' && !u.search && !u.hash && !u.username && !u.password && !v.endsWith('/');
    } catch {
      return false;
    }
  }, 'expected an http:// or https:// URL with no path, such as https://tagbox.example.com');

const oidc = z
  .object({
    /** The provider's issuer URL (discovery: ISSUER/.well-known/openid-configuration). */
    issuer: z.url({ protocol: /^https?$/, error: 'expected the issuer URL (https://...)' }),
    clientId: z.string().min(1),
    /** Also TAGBOX_WEB_OIDC_CLIENT_SECRET; absent: a public client (PKCE only). */
    clientSecret: z.string().min(1).optional(),
    /** What the sign-in page calls the button ("Sign in with NAME"). */
    name: z.string().min(1).max(100).default('SSO'),
    scopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'expected a scope token')).min(1).default(['openid', 'email', 'profile']),
    /** Verified emails of these domains may sign in without an invitation (as role member). */
    allowedEmailDomains: z.array(z.string().regex(/^[a-z0-9.-]+\.[a-z]{2,}$/i, 'expected a domain such as example.com')).default([]),
    /** Extra CA (PEM file) trusted for the provider's TLS. */
    caFile: z.string().min(1).optional(),
  })
  .strict();

export const WEB_DEFAULTS = { sessionHours: 168, sessionIdleHours: 24, signInLinkHours: 24 };

export const configSchema = z
  .object({
    server: z
      .object({
        host: z.string().min(1).default('127.0.0.1'),
        port: port.default(8787),
      })
      .strict()
      .default({ host: '127.0.0.1', port: 8787 }),
    database: z
      .object({
        /** postgres://... switches the store (and the vault) to Postgres. */
        url: z
          .string()
          .regex(/^postgres(ql)?:\/\//, 'expected a postgres:// or postgresql:// URL')
          .optional(),
        /** Postgres schema for Tagbox's tables; the vault uses `<schema>_vault`. */
        schema: z
          .string()
          .regex(/^[a-z_][a-z0-9_]{0,50}$/, 'expected a lower-case SQL identifier')
          .default('tagbox'),
      })
      .strict()
      .default({ schema: 'tagbox' }),
    log: z
      .object({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info') })
      .strict()
      .default({ level: 'info' }),
    upstream: z
      .object({
        /** Explicit mappings for upstream connections; these may reach loopback. */
        connectTo: z.array(connectTo).default([]),
        /** Extra CA (PEM file) trusted for upstream TLS, besides the system roots. */
        caFile: z.string().min(1).optional(),
      })
      .strict()
      .default({ connectTo: [] }),
    vault: z
      .object({
        /**
         * Where the master key (base64 of 32 bytes) is read from when TAGBOX_MASTER_KEY
         * is not set; created 0600 on first run. Default TAGBOX_HOME/vault/master.key.
         */
        masterKeyFile: z.string().min(1).optional(),
      })
      .strict()
      .default({}),
    proxy: z
      .object({
        /** Hosts tunnelled unopened (clients that pin certificates); judged on host and port alone. */
        passthrough: z
          .array(z.union([z.string().min(1), z.object({ host: z.string().min(1), ports: z.array(port).min(1) }).strict()]))
          .default([]),
        /** Cap on concurrently open CONNECT tunnels; more are refused with 503. */
        maxTunnels: z.number().int().min(1).default(1024),
        /** Open tunnels per session (per remote address on a TCP listener); default 128, at most a quarter of maxTunnels. */
        maxTunnelsPerSession: z.number().int().min(1).optional(),
        /** Cap on concurrently open client connections (further capped by the open-files limit); more are refused with 503. */
        maxConnections: z.number().int().min(1).default(4096),
        /** Open client connections per session (per remote address on a TCP listener); default 256, at most a quarter of maxConnections. */
        maxConnectionsPerSession: z.number().int().min(1).optional(),
        /** Time from a CONNECT's 200 to a usable tunnel (first byte and TLS handshake). */
        handshakeTimeoutMs: z.number().int().min(100).max(120_000).default(5000),
        /** File descriptors kept free beyond two per client connection, below RLIMIT_NOFILE. */
        fdReserve: z.number().int().min(16).default(256),
        /**
         * Processes `tagbox proxy` serves its listener with (connections shared round-robin). One on a
         * small machine, where the load and the upstreams need the other cores; each worker has its own caps.
         */
        workers: z.number().int().min(1).max(64).default(1),
      })
      .strict()
      .superRefine((p, ctx) => {
        // One session must never be able to take a whole global cap.
        const check = (key: 'maxTunnelsPerSession' | 'maxConnectionsPerSession', global: 'maxTunnels' | 'maxConnections') => {
          const value = p[key];
          if (value !== undefined && value > Math.max(1, Math.floor(p[global] / 4))) {
            ctx.addIssue({
              code: 'custom',
              path: [key],
              message: `${value} is more than a quarter of proxy.${global} (${p[global]}): one session could starve the others; lower it or raise proxy.${global}`,
            });
          }
        };
        check('maxTunnelsPerSession', 'maxTunnels');
        check('maxConnectionsPerSession', 'maxConnections');
      })
      .default({ passthrough: [], maxTunnels: 1024, maxConnections: 4096, handshakeTimeoutMs: 5000, fdReserve: 256, workers: 1 }),
    agent: z
      .object({
        /** The default engine; a channel's own `engine` overrides it. Default: claude when installed, else shell. */
        engine: z.enum(['shell', 'claude']).optional(),
        /** The model the claude engine uses, always passed explicitly (never the engine's own default). */
        model: z.string().min(1).default('claude-sonnet-4-5'),
        /** Vault name of the model key (the proxy injects it; the sandbox holds a placeholder). */
        modelSecret: z.string().min(1).optional(),
        /** A session's sandbox is released after this long without a turn; the next message rebuilds it. */
        idleSeconds: z.number().int().min(1).default(900),
        /** Wall-time limit of one turn, enforced by the server. */
        turnTimeoutSeconds: z.number().int().min(1).default(1800),
        /** Live sandboxes per org; turns beyond it wait, and their threads say so. */
        maxSandboxesPerOrg: z.number().int().min(1).default(8),
        /** Longest message accepted from a person (bytes of UTF-8). */
        maxMessageBytes: z.number().int().min(1).max(1024 * 1024).default(32 * 1024),
        /** Longest text the agent may post in one message; the rest is cut with a note. */
        maxReplyBytes: z.number().int().min(256).max(1024 * 1024).default(16 * 1024),
        /** Progress posted per session per second at most (bytes of output); the rest is summarised. */
        progressBytesPerSecond: z.number().int().min(256).default(16 * 1024),
        /** Model turns (request -> tool use -> request) per invocation, at most. */
        maxTurns: z.number().int().min(1).max(1000).default(50),
      })
      .strict()
      .default({ model: 'claude-sonnet-4-5', idleSeconds: 900, turnTimeoutSeconds: 1800, maxSandboxesPerOrg: 8, maxMessageBytes: 32 * 1024, maxReplyBytes: 16 * 1024, progressBytesPerSecond: 16 * 1024, maxTurns: 50 }),
    schedules: z
      .object({
        /** A firing missed while Tagbox was down runs at start if it is at most this old, else it is recorded as skipped. */
        graceSeconds: z.number().int().min(0).default(600),
      })
      .strict()
      .default({ graceSeconds: 600 }),
    usage: z
      .object({
        /**
         * Model name -> USD per million tokens {input, output, cacheRead, cacheWrite}, over the
         * defaults of usage/prices.ts (Claude 4 list prices, and `default` for unknown models).
         * A model is priced by its own entry, else the longest entry that prefixes its name at a '-'.
         */
        prices: z.record(modelKey, modelPrice, { error: (issue) => (issue.code === 'invalid_key' ? MODEL_KEY_EXPECTED : undefined) }).default({}),
      })
      .strict()
      .default({ prices: {} }),
    slack: z
      .object({
        /** Events API mode: the app's signing secret; requests whose signature or timestamp fails are refused. */
        signingSecret: z.string().min(1).optional(),
        /** Messages the agent posts in one channel per second at most (Slack's limit is about one). */
        messagesPerSecond: z.number().min(0.1).max(10).default(1),
        /** Agent output longer than this (characters) is posted as a snippet file, with its start in the thread. */
        snippetAboveChars: z.number().int().min(500).max(39000).default(3500),
        /** A member's Slack profile (users.info) is read again after this long. */
        userRefreshMinutes: z.number().int().min(1).default(60),
      })
      .strict()
      .default({ messagesPerSecond: 1, snippetAboveChars: 3500, userRefreshMinutes: 60 }),
    web: z
      .object({
        /** Where browsers reach Tagbox; default: the request's own origin (see docs/WEB.md). */
        publicUrl: publicUrl.optional(),
        /** A cookie session ends this long after sign-in, whatever its use. */
        sessionHours: z.number().int().min(1).max(24 * 365).default(WEB_DEFAULTS.sessionHours),
        /** ... or after this long unused. */
        sessionIdleHours: z.number().int().min(1).max(24 * 365).default(WEB_DEFAULTS.sessionIdleHours),
        /** A one-time sign-in link expires this long after it was made. */
        signInLinkHours: z.number().int().min(1).max(24 * 30).default(WEB_DEFAULTS.signInLinkHours),
        oidc: oidc.optional(),
      })
      .strict()
      .default(WEB_DEFAULTS),
    audit: z
      .object({
        /**
         * The Ed25519 key (PEM) that signs audit checkpoints, when TAGBOX_AUDIT_SIGNING_KEY
         * is not set; created 0600 on first need. Default TAGBOX_HOME/audit-signing.key.
         * Replicas on one database must share it. See docs/AUDIT.md.
         */
        signingKeyFile: z.string().min(1).optional(),
        /** The newest checkpoint, kept outside the database. Default TAGBOX_HOME/audit/checkpoint.json. */
        checkpointFile: z.string().min(1).optional(),
      })
      .strict()
      .default({}),
  })
  .strict();

export type TagboxConfig = z.infer<typeof configSchema>;
