import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerOptions, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { AuditLog } from '../audit/log.js';
import type { Logger } from '../log.js';
import type { EgressPolicy } from '../policy/compile.js';
import { compileHostMatcher, type HostMatcher } from '../policy/passthrough.js';
import type { CredentialResolver } from '../vault/credentials.js';
import { AuditWriter } from './audit-writer.js';
import type { GithubEvent } from './github-event.js';
import type { BlockedEvent } from './blocked-event.js';
import { ClientCaps } from './client-caps.js';
import { handleExchange, type ExchangeDeps } from './exchange.js';
import { connectionBudget, openFilesLimit } from './fd-budget.js';
import { LeafCache, type CaPem } from './leaf-cache.js';
import { ListenerState, type TunnelInfo } from './listener-state.js';
import { ProxyMetrics } from './metrics.js';
import type { ModelMeter, UsageContext } from './model-meter.js';
import { EgressRecorder } from './record.js';
import { loggable } from './redact.js';
import { handleConnect, type TunnelDeps } from './tunnel.js';
import { handleUpgrade } from './upgrade.js';
import { Upstreams, type UpstreamOptions } from './upstream.js';

/**
 * The Agent Proxy: one process, many listeners. Each session gets its own
 * listener (a Unix socket bound into its sandbox) with its own policy; the
 * standalone form has one TCP listener serving one policy to all.
 */
export interface AgentProxyOptions {
  /** The deployment CA (a full CertificateAuthority works too). */
  ca: CaPem;
  /** Where decisions are recorded; pass an AuditWriter to share its group commit (e.g. with the vault). */
  audit: AuditLog | AuditWriter;
  /** The vault's resolver; without it, every credential decision fails closed. */
  resolver?: CredentialResolver;
  upstream: UpstreamOptions;
  /** Host patterns tunnelled unopened (tagbox.yaml `proxy.passthrough`). */
  passthrough?: Array<string | { host: string; ports: number[] }>;
  logger?: Logger;
  limits?: Partial<ProxyLimits>;
  /**
   * Mint leaves for the policy's exact hosts ahead of the first request. Right
   * for long-running proxies; a one-shot `tagbox exec` leaves it off.
   */
  warmLeaves?: boolean;
  /**
   * Called (synchronously, from record.ts) for every blocked decision on a
   * listener that has a session: requests, CONNECTs and rejected malformed
   * requests alike. What it throws is logged, never seen by the request.
   */
  onBlocked?: (event: BlockedEvent) => void;
  /** What a session's listener did on GitHub: branches pushed, pull requests opened (github-event.ts). */
  onGithub?: (event: GithubEvent) => void;
  /** Meters model requests of listeners opened with a usage context (budgets before, usage after); flushed on close. */
  meter?: ModelMeter;
}

export interface ProxyLimits {
  /** Open CONNECT tunnels, in total. */
  maxTunnels: number;
  /** Open tunnels per session (per remote address on a TCP listener); never more than a quarter of maxTunnels. */
  maxTunnelsPerSession: number;
  /** Open client connections, in total; further capped by the open-files limit. */
  maxConnections: number;
  /** Open client connections per session (per remote address on a TCP listener); never more than a quarter of maxConnections. */
  maxConnectionsPerSession: number;
  /** File descriptors kept free beyond two per client connection (see fd-budget.ts). */
  fdReserve: number;
  /** Request bodies held for signing (SigV4), all requests together. */
  maxSigningBufferBytes: number;
  maxHeaderBytes: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  handshakeTimeoutMs: number;
  idleTimeoutMs: number;
  leafCacheSize: number;
}

export const DEFAULT_LIMITS: ProxyLimits = {
  maxTunnels: 1024,
  maxTunnelsPerSession: 128,
  maxConnections: 4096,
  maxConnectionsPerSession: 256,
  fdReserve: 256,
  maxSigningBufferBytes: 64 * 1024 * 1024,
  maxHeaderBytes: 32 * 1024,
  headersTimeoutMs: 15_000,
  requestTimeoutMs: 300_000,
  keepAliveTimeoutMs: 30_000,
  handshakeTimeoutMs: 5_000,
  idleTimeoutMs: 300_000,
  leafCacheSize: 1000,
};

/**
 * Where a listener accepts: a Unix socket or a TCP port it binds, or a server the
 * caller bound already (`acceptor`: listening, made with allowHalfOpen and noDelay
 * as the proxy's own, its mode set; `tagbox exec` binds
 * its socket before the proxy is loaded and hands over what it accepted by
 * emitting `connection` on it). The listener's close closes it in every case.
 */
export type ListenAddress = { socketPath: string } | { host: string; port: number } | { acceptor: NetServer };

export interface ProxyListener {
  /** `unix:/path` or `host:port`. */
  readonly address: string;
  readonly port?: number;
  readonly session: string | undefined;
  /** Swaps the policy atomically; requests already decided finish on the old one. */
  setPolicy(policy: EgressPolicy): void;
  close(): Promise<void>;
}

export class AgentProxy {
  readonly metrics = new ProxyMetrics();
  readonly leaves: LeafCache;
  private readonly limits: ProxyLimits;
  private readonly upstreams: Upstreams;
  private readonly auditWriter: AuditWriter;
  private readonly exchangeDeps: ExchangeDeps;
  private readonly tunnels = new WeakMap<Socket, { state: ListenerState; tunnel: TunnelInfo }>();
  private readonly inner: HttpServer;
  private readonly passthrough: HostMatcher;
  private readonly caps: ClientCaps;
  /** The client (for the caps) each accepted socket belongs to. */
  private readonly clients = new WeakMap<Socket, string>();
  private readonly listeners = new Set<ProxyListener>();
  private lastRefusalLog = 0;

  constructor(private readonly options: AgentProxyOptions) {
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    const fdLimit = openFilesLimit();
    this.caps = new ClientCaps({
      maxConnections: Math.min(this.limits.maxConnections, connectionBudget(fdLimit, this.limits.fdReserve)),
      maxConnectionsPerClient: this.limits.maxConnectionsPerSession,
      maxTunnels: this.limits.maxTunnels,
      maxTunnelsPerClient: this.limits.maxTunnelsPerSession,
    });
    this.leaves = new LeafCache(options.ca, { maxEntries: this.limits.leafCacheSize });
    this.upstreams = new Upstreams(options.upstream);
    this.auditWriter = options.audit instanceof AuditWriter ? options.audit : new AuditWriter(options.audit, options.logger);
    this.passthrough = compileHostMatcher(options.passthrough ?? [], 'proxy.passthrough');
    const record = new EgressRecorder(this.auditWriter, this.metrics, options.logger, options.onBlocked, options.onGithub);
    this.metrics.trackLeaves(() => this.leaves.stats);
    this.exchangeDeps = {
      upstreams: this.upstreams,
      resolver: options.resolver,
      record,
      signingBuffers: { held: 0, max: this.limits.maxSigningBufferBytes },
      ...(options.meter ? { meter: options.meter } : {}),
    };

    // Requests inside intercepted tunnels: never listens itself; tunnels hand it sockets.
    this.inner = createHttpServer(this.serverOptions());
    this.inner.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const ctx = this.tunnels.get(req.socket);
      if (!ctx) return void res.destroy();
      void handleExchange(this.exchangeDeps, ctx.state, req, res, ctx.tunnel).catch((error: unknown) => this.crashed(error, res));
    });
    this.inner.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      const ctx = this.tunnels.get(req.socket);
      if (!ctx) return void socket.destroy();
      const reparse = (s: Duplex) => this.inner.emit('connection', s);
      void handleUpgrade(this.exchangeDeps, ctx.state, req, socket, head, reparse, ctx.tunnel).catch(() => socket.destroy());
    });
    this.applyTimeouts(this.inner);
  }

  /** Open connections and tunnels, in total and per client, and the caps in force. */
  usage() {
    return { ...this.caps.usage(), limits: { ...this.caps.limits, perClient: this.caps.perClient } };
  }

  /**
   * A listener for one session (or, on TCP, for all comers). With `usage` its
   * model requests are metered and held to the budgets of that org and place.
   */
  async listen(where: ListenAddress, binding: { session?: string; policy: EgressPolicy; usage?: UsageContext }): Promise<ProxyListener> {
    // Fail closed: a listener that should be metered is never opened unmetered.
    if (binding.usage && !this.options.meter) throw new Error('a listener with a usage context needs a proxy with a model meter');
    const state = new ListenerState(binding.session, binding.policy, binding.usage);
    if (this.options.warmLeaves) this.leaves.warm(binding.policy.allow.exactHosts());
    // The HTTP server parses; the net server below accepts, so that every
    // connection is counted (and refused beyond its caps) before any parsing.
    const server = createHttpServer(this.serverOptions());
    this.applyTimeouts(server);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      void handleExchange(this.exchangeDeps, state, req, res).catch((error: unknown) => this.crashed(error, res));
    });
    server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      void handleConnect(this.tunnelDeps(), state, req, socket, head).catch((error: unknown) => {
        this.options.logger?.error({ err: loggable(error) }, 'CONNECT handling failed');
        socket.destroy();
      });
    });
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      void handleUpgrade(this.exchangeDeps, state, req, socket, head, (s) => server.emit('connection', s)).catch(() => socket.destroy());
    });

    const sockets = new Set<Socket>();
    const perAddress = 'port' in where;
    const onConnection = (socket: Socket) => this.accept(socket, state, server, sockets, perAddress);
    let acceptor: NetServer;
    if ('acceptor' in where) {
      acceptor = where.acceptor;
      acceptor.on('connection', onConnection);
    } else {
      acceptor = createNetServer({ allowHalfOpen: true, noDelay: true }, onConnection);
      if ('socketPath' in where && existsSync(where.socketPath)) unlinkSync(where.socketPath);
      await new Promise<void>((resolve, reject) => {
        acceptor.once('error', reject);
        if ('socketPath' in where) acceptor.listen(where.socketPath, () => resolve());
        else acceptor.listen(where.port, where.host, () => resolve());
      });
    }
    // Out of descriptors, accept() fails: say so and keep serving, never crash.
    acceptor.on('error', (error) => this.options.logger?.error({ err: loggable(error) }, 'proxy listener error'));
    // Only the sandbox it is bound into (and the host's owner) may use a session socket.
    if ('socketPath' in where) chmodSync(where.socketPath, 0o600);
    const bound = acceptor.address();
    const address = typeof bound === 'string' ? `unix:${bound}` : `${(bound as AddressInfo).address}:${(bound as AddressInfo).port}`;
    const listener: ProxyListener = {
      address,
      ...(typeof bound === 'object' && bound ? { port: bound.port } : {}),
      session: binding.session,
      setPolicy: (policy) => {
        state.setPolicy(policy);
        if (this.options.warmLeaves) this.leaves.warm(policy.allow.exactHosts());
      },
      close: async () => {
        this.listeners.delete(listener);
        const closed = new Promise<void>((resolve) => acceptor.close(() => resolve()));
        // Tunnels and upgraded connections too: nothing of a closed session stays open.
        for (const socket of sockets) socket.destroy();
        server.closeAllConnections();
        server.close();
        await closed;
        this.upstreams.closeOwner(`${state.id}|`);
        if ('socketPath' in where && existsSync(where.socketPath)) unlinkSync(where.socketPath);
      },
    };
    this.listeners.add(listener);
    return listener;
  }

  /** Stops every listener, drains pools and flushes the audit log. */
  async close(): Promise<void> {
    await Promise.all([...this.listeners].map((l) => l.close()));
    this.inner.closeAllConnections();
    this.inner.close();
    await this.upstreams.close();
    await this.options.meter?.close();
    await this.auditWriter.close();
  }

  /** Commits the decisions recorded so far (a request's end is recorded within a few ms, not awaited). */
  flushAudit(): Promise<void> {
    return this.auditWriter.flush();
  }

  private tunnelDeps(): TunnelDeps {
    return {
      upstreams: this.upstreams,
      leaves: this.leaves,
      passthrough: this.passthrough,
      record: this.exchangeDeps.record,
      metrics: this.metrics,
      inner: this.inner,
      tunnels: this.tunnels,
      caps: this.caps,
      clientOf: (socket) => this.clients.get(socket) ?? 'unknown',
      handshakeTimeoutMs: this.limits.handshakeTimeoutMs,
      idleTimeoutMs: this.limits.idleTimeoutMs,
    };
  }

  private serverOptions(): ServerOptions {
    // Node's parser is strict by default: it refuses Content-Length with
    // Transfer-Encoding, non-final or unknown transfer codings and obs-fold
    // (400), and oversized headers (431).
    // Node enforces headersTimeout/requestTimeout only when it sweeps its
    // connections (every 30 s by default): sweep often enough that a stalled,
    // half-sent request is cut close to headersTimeout, not up to 30 s later.
    const sweepMs = Math.max(100, Math.min(30_000, Math.floor(this.limits.headersTimeoutMs / 4)));
    return {
      maxHeaderSize: this.limits.maxHeaderBytes,
      insecureHTTPParser: false,
      requireHostHeader: false,
      joinDuplicateHeaders: false,
      connectionsCheckingInterval: sweepMs,
    };
  }

  /**
   * One accepted connection: counted against its client's and the global cap
   * (refused with 503 beyond them), then handed to the HTTP server. The count
   * is given back when the socket closes, whatever it became (tunnel, upgrade).
   */
  private accept(socket: Socket, state: ListenerState, server: HttpServer, sockets: Set<Socket>, perAddress: boolean): void {
    const client = perAddress ? `${state.id}/${socket.remoteAddress ?? '?'}` : `${state.id}`;
    const slot = this.caps.openConnection(client);
    if (!slot.ok) {
      this.metrics.refusals.inc({ what: 'connection' });
      const now = Date.now();
      if (now - this.lastRefusalLog > 1000) {
        this.lastRefusalLog = now;
        this.options.logger?.warn({ session: state.session, reason: slot.reason }, 'connection refused');
      }
      return refuseConnection(socket, slot.reason);
    }
    sockets.add(socket);
    this.clients.set(socket, client);
    this.metrics.connections.inc();
    socket.once('close', () => {
      slot.release();
      sockets.delete(socket);
      this.metrics.connections.dec();
    });
    server.emit('connection', socket);
  }

  private applyTimeouts(server: HttpServer): void {
    server.on('clientError', answerClientError);
    server.headersTimeout = this.limits.headersTimeoutMs;
    server.requestTimeout = this.limits.requestTimeoutMs;
    server.keepAliveTimeout = this.limits.keepAliveTimeoutMs;
    server.timeout = this.limits.idleTimeoutMs;
    // Node enforces headersTimeout and requestTimeout with a sweep it starts
    // when a server starts listening. These servers never listen (they are
    // handed sockets), so start it here: without it a request stalled
    // half-way through its headers would hold its connection until the idle
    // timeout, minutes later.
    server.emit('listening');
  }

  private crashed(error: unknown, res: ServerResponse): void {
    this.options.logger?.error({ err: loggable(error) }, 'request handling failed');
    if (!res.headersSent) {
      res.writeHead(500, { 'x-tagbox-decision': 'blocked', connection: 'close' });
      res.end('proxy error\n');
    } else res.destroy();
  }
}

/** A connection over its caps: a short 503 (no request was read), then closed. */
function refuseConnection(socket: Socket, reason: string): void {
  socket.on('error', () => socket.destroy());
  const body = `${reason}\n`;
  socket.end(`HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-tagbox-decision: blocked\r\nconnection: close\r\n\r\n${body}`);
  // Read and drop what it sends, so that closing does not reset before the answer is read.
  socket.on('data', () => undefined);
  setTimeout(() => socket.destroy(), 1000).unref();
}

const CLIENT_ERROR_TEXT: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' };

/**
 * A request the parser refused (smuggling shapes, oversized headers, garbage,
 * a stalled request). Node's default answer writes and destroys at once, which
 * inside an intercepted tunnel loses the answer (TLS writes are asynchronous)
 * or turns it into a reset; end gracefully instead, then make sure it closes.
 */
const answered = new WeakSet<Duplex>();

function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  // The parser reports again on the bytes that follow: the answer is already on its way.
  if (answered.has(socket)) return;
  if (error.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
  answered.add(socket);
  const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  const body = `${CLIENT_ERROR_TEXT[status]}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${CLIENT_ERROR_TEXT[status]}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${body.length}\r\nx-tagbox-decision: blocked\r\nconnection: close\r\n\r\n${body}`,
  );
  // Keep reading (and dropping) what the client still sends, so that closing
  // does not reset the connection before it has read the answer.
  socket.on('data', () => undefined);
  setTimeout(() => socket.destroy(), 1000).unref();
}
