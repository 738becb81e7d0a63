import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { MODEL_HOST } from '../engines/model-connection.js';
import { decideTunnel } from '../policy/decide.js';
import { normaliseHost } from '../policy/hosts.js';
import type { HostMatcher } from '../policy/passthrough.js';
import type { ClientCaps } from './client-caps.js';
import { countRawHeader, parseAuthority } from './headers.js';
import type { LeafCache } from './leaf-cache.js';
import type { ListenerState, TunnelInfo } from './listener-state.js';
import type { ProxyMetrics } from './metrics.js';
import type { EgressRecorder } from './record.js';
import { shownTarget } from './redact.js';
import type { Upstreams } from './upstream.js';

/**
 * CONNECT. A host listed as passthrough is tunnelled unopened, judged on host
 * and port alone. Everything else is intercepted: the proxy answers 200,
 * terminates TLS with a leaf for the CONNECT host, and hands the decrypted
 * stream to the inner HTTP server, where every request is decided on its own.
 * A CONNECT to a host that no rule could ever allow is refused up front.
 */
export interface TunnelDeps {
  upstreams: Upstreams;
  leaves: LeafCache;
  passthrough: HostMatcher;
  record: EgressRecorder;
  metrics?: ProxyMetrics;
  /** The server that parses requests inside intercepted tunnels. */
  inner: HttpServer;
  /** Which tunnel (and listener) a decrypted socket belongs to. */
  tunnels: WeakMap<Socket, { state: ListenerState; tunnel: TunnelInfo }>;
  /** Tunnel slots per client and in total. */
  caps: ClientCaps;
  /** Which client (for the caps) a listener's socket belongs to. */
  clientOf(socket: Socket): string;
  /** From the 200 to a usable tunnel: the first byte, and the TLS handshake. */
  handshakeTimeoutMs: number;
  idleTimeoutMs: number;
}

const TLS_HANDSHAKE = 0x16;

export async function handleConnect(deps: TunnelDeps, state: ListenerState, req: IncomingMessage, client: Socket, head: Buffer): Promise<void> {
  client.on('error', () => client.destroy());
  const target = parseAuthority(req.url ?? '');
  if (!target || target.port === undefined) return refuse(client, 400, `CONNECT needs host:port, got "${shownTarget(req.url ?? '')}"`);
  const host = normaliseHost(target.host);
  const facts = { method: 'CONNECT', scheme: 'https' as const, host: host.ok ? host.value.host : target.host, port: target.port, path: '' };

  if (countRawHeader(req.rawHeaders, 'host') > 1) return refuseRecorded(deps, state, facts, client, 400, 'more than one Host header');
  const hostHeader = req.headers.host;
  if (hostHeader !== undefined) {
    const h = parseAuthority(hostHeader);
    const hn = h && normaliseHost(h.host);
    if (!h || !hn?.ok || !host.ok || hn.value.host !== host.value.host || (h.port !== undefined && h.port !== target.port)) {
      return refuseRecorded(deps, state, facts, client, 421, `Host ${shownTarget(hostHeader)} does not match the CONNECT target ${shownTarget(req.url ?? '')}`);
    }
  }
  const policy = state.policy;
  const decision = decideTunnel(policy, { host: target.host, port: target.port });
  if (decision.outcome === 'blocked') {
    deps.record.begin(state, facts, decision).finish({ status: 403 });
    return refuse(client, 403, `blocked by Tagbox: ${decision.reason}`);
  }

  // A client holds at most its share of the tunnels (see client-caps.ts).
  const slot = deps.caps.openTunnel(deps.clientOf(client));
  if (!slot.ok) {
    deps.metrics?.refusals.inc({ what: 'tunnel' });
    return refuseRecorded(deps, state, facts, client, 503, slot.reason);
  }
  deps.metrics?.tunnels.inc();
  client.once('close', () => {
    slot.release();
    deps.metrics?.tunnels.dec();
  });
  client.setTimeout(deps.idleTimeoutMs, () => client.destroy());

  if (deps.passthrough.match(decision.host, target.port)) {
    // An unopened tunnel cannot be metered: a metered listener's model host is always intercepted.
    if (state.usage !== undefined && decision.host === MODEL_HOST) {
      return refuseRecorded(deps, state, facts, client, 403, `${decision.host} is metered (model usage and budgets) and cannot be tunnelled unopened: remove it from proxy.passthrough`);
    }
    return passthrough(deps, state, facts, decision, client, head);
  }

  client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
  // One deadline from here to a usable tunnel: a client that sends a byte and
  // stalls (or never finishes TLS) gives its slot back within seconds.
  const deadline = setTimeout(() => client.destroy(), deps.handshakeTimeoutMs);
  client.once('close', () => clearTimeout(deadline));
  const first = head.length > 0 ? head : await firstChunk(client);
  if (!first || client.destroyed) return void client.destroy();
  client.unshift(first);
  const tunnel: TunnelInfo = { host: decision.host, port: target.port, tls: first[0] === TLS_HANDSHAKE };
  if (!tunnel.tls) {
    // Plain HTTP in the tunnel: the inner server's header timeout takes over.
    clearTimeout(deadline);
    deps.tunnels.set(client, { state, tunnel });
    deps.inner.emit('connection', client);
    // firstChunk paused the socket: a paused socket never reads, so it would never notice a close.
    client.resume();
    return;
  }

  // The upstream connection opens while the client finishes TLS with us (see Upstreams.openAhead).
  // Best effort: if it fails, the first request dials (and reports) as it would have.
  deps.upstreams
    .resolve('https', decision.host, target.port, policy.addresses)
    .then((resolved) => {
      if (resolved.ok && !client.destroyed) deps.upstreams.openAhead(resolved.target, state.id);
    })
    .catch(() => undefined);
  let context;
  try {
    context = await deps.leaves.get(decision.host);
  } catch {
    return void client.destroy();
  }
  if (client.destroyed) return;
  deps.metrics?.leafCache.inc({ result: 'lookup' });
  const tls = new TLSSocket(client, {
    isServer: true,
    secureContext: context,
    ALPNProtocols: ['http/1.1'],
    // Whatever name the client asks for, it gets the CONNECT host's leaf;
    // a mismatched SNI is answered with 421 on the first request.
    SNICallback: (name, cb) => {
      const sni = normaliseHost(name);
      tunnel.sni = sni.ok ? sni.value.host : name;
      cb(null, context);
    },
  });
  tls.once('secure', () => clearTimeout(deadline));
  tls.on('error', () => tls.destroy());
  tls.once('close', () => client.destroy());
  deps.tunnels.set(tls, { state, tunnel });
  deps.inner.emit('connection', tls);
}

async function passthrough(
  deps: TunnelDeps,
  state: ListenerState,
  facts: { method: string; scheme: 'https'; host: string; port: number; path: string },
  decision: ReturnType<typeof decideTunnel>,
  client: Socket,
  head: Buffer,
): Promise<void> {
  const record = deps.record.begin(state, facts, decision);
  const resolved = await deps.upstreams.resolve('http', decision.host, facts.port, state.policy.addresses);
  if (!resolved.ok) {
    record.finish({ status: resolved.status, outcome: 'blocked', reason: resolved.reason });
    return refuse(client, resolved.status, `blocked by Tagbox: ${resolved.reason}`);
  }
  let upstream: Socket;
  try {
    // Passthrough: a raw TCP connection; the client does its own TLS end to end.
    upstream = (await deps.upstreams.dial(resolved.target)) as Socket;
  } catch (error) {
    record.finish({ status: 502, reason: `${decision.reason}; connect failed: ${(error as Error).message}` });
    return refuse(client, 502, `cannot reach ${decision.host}:${facts.port}`);
  }
  client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
  if (head.length) upstream.write(head);
  let bytesOut = 0;
  let bytesIn = 0;
  upstream.on('data', (c: Buffer) => (bytesOut += c.length));
  client.on('data', (c: Buffer) => (bytesIn += c.length));
  upstream.pipe(client);
  client.pipe(upstream);
  const end = () => {
    upstream.destroy();
    client.destroy();
    record.finish({ status: 200, bytesOut, bytesIn });
  };
  upstream.on('error', end).on('close', end);
  client.on('close', end);
  upstream.setTimeout(deps.idleTimeoutMs, end);
}

/** The client's first bytes in the tunnel (the socket is left paused), or undefined if it went away. */
function firstChunk(socket: Socket): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const onData = (chunk: Buffer) => {
      socket.pause();
      done(chunk);
    };
    const done = (value: Buffer | undefined) => {
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('end', onClose);
      resolve(value);
    };
    const onClose = () => done(undefined);
    socket.on('data', onData);
    socket.once('close', onClose);
    // The CONNECT socket allows half-open: a client that hangs up before its
    // first byte only sends FIN ('end'), and would otherwise hold a tunnel slot
    // until the deadline.
    socket.once('end', onClose);
  });
}

function refuseRecorded(
  deps: TunnelDeps,
  state: ListenerState,
  facts: { method: string; scheme: 'https'; host: string; port: number; path: string },
  client: Socket,
  status: number,
  reason: string,
): void {
  deps.record.begin(state, facts, { outcome: 'blocked', reason, host: facts.host }).finish({ status });
  refuse(client, status, reason);
}

/** Answers a CONNECT with an error and closes the connection (CONTRACT.md: 403, then close). */
function refuse(client: Socket, status: number, reason: string): void {
  const text = { 400: 'Bad Request', 403: 'Forbidden', 421: 'Misdirected Request', 502: 'Bad Gateway', 503: 'Service Unavailable' }[status] ?? 'Error';
  const body = `${reason}\n`;
  client.end(
    `HTTP/1.1 ${status} ${text}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-tagbox-decision: blocked\r\nconnection: close\r\n\r\n${body}`,
  );
}
