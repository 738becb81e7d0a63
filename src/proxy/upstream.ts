import { lookup } from 'node:dns/promises';
import { existsSync, readFileSync } from 'node:fs';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { checkServerIdentity, connect as tlsConnect, createSecureContext, rootCertificates, type SecureContext, type TLSSocket } from 'node:tls';
import { createRequire } from 'node:module';
import type * as Undici from 'undici';
import type { Pool } from 'undici';

// The HTTP client is loaded with the first upstream pool: a one-shot command
// that makes no request never pays for it.
const loadUndici = (): typeof Undici => createRequire(import.meta.url)('undici') as typeof Undici;
import type { CompiledCidrs } from '../policy/cidr.js';
import { isForbiddenAddress } from '../policy/ssrf.js';
import { findConnectTo, type ConnectToRule } from './connect-to.js';
import { withoutQueries } from './redact.js';

/**
 * Everything about reaching an upstream: resolve the name once, refuse what
 * the SSRF guard forbids, then dial exactly the address that was checked —
 * with upstream TLS always verified against the host the client asked for.
 */
export interface UpstreamOptions {
  connectTo: readonly ConnectToRule[];
  /** Extra CA certificates (PEM) trusted for upstream TLS, besides the system roots. */
  extraCaPem?: string;
  /** Addresses of the proxy itself, refused like loopback. */
  listenAddresses?: string[];
  connectTimeoutMs?: number;
  headersTimeoutMs?: number;
  bodyTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
  maxPools?: number;
  /** How long a connection opened ahead of a tunnel's first request waits to be used (default 5 s). */
  openAheadIdleMs?: number;
}

/** Where a request will really go. */
export interface UpstreamTarget {
  scheme: 'http' | 'https';
  /** The host the client named (normalised): TLS is verified against it. */
  host: string;
  port: number;
  /** The checked address that will be dialled. */
  address: string;
  dialPort: number;
  /** True when an explicit --connect-to mapping chose the address. */
  mapped: boolean;
}

export type ResolveResult = { ok: true; target: UpstreamTarget } | { ok: false; reason: string; status: number };

const SYSTEM_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
const DNS_TTL_MS = 5_000;

export class Upstreams {
  private secureContextCache: SecureContext | undefined;
  private readonly pools = new Map<string, Pool>();
  private readonly dnsCache = new Map<string, { addresses: string[]; expires: number }>();
  private readonly selfAddresses: string[];
  private readonly verdicts = new WeakMap<CompiledCidrs, Map<string, string | null>>();
  /** Per session and target (see sessionTarget): the pools that reach it, and a connection opened ahead of its first request. */
  private readonly poolsByTarget = new Map<string, Set<Pool>>();
  private readonly reachOf = new WeakMap<Pool, string>();
  private readonly opened = new Map<string, { socket: Promise<Socket | TLSSocket>; timer: NodeJS.Timeout }>();

  constructor(private readonly options: UpstreamOptions) {
    this.selfAddresses = [...ownInterfaceAddresses(), ...(options.listenAddresses ?? [])];
  }

  /** The trust store for upstream TLS, parsed on first use (a command that makes no HTTPS request never pays for it). */
  private get secureContext(): SecureContext {
    if (!this.secureContextCache) {
      const roots = existsSync(SYSTEM_BUNDLE) ? [readFileSync(SYSTEM_BUNDLE, 'utf8')] : [...rootCertificates];
      const ca = this.options.extraCaPem ? [...roots, this.options.extraCaPem] : roots;
      this.secureContextCache = createSecureContext({ ca, minVersion: 'TLSv1.2' });
    }
    return this.secureContextCache;
  }

  /** Resolves once and applies the SSRF guard; the result is what gets dialled. */
  async resolve(scheme: 'http' | 'https', host: string, port: number, allowed: CompiledCidrs): Promise<ResolveResult> {
    const mapping = findConnectTo(this.options.connectTo, host, port);
    if (mapping) {
      const addresses = isIP(mapping.toHost) ? [mapping.toHost] : await this.lookupAll(mapping.toHost).catch(() => []);
      if (addresses.length === 0) return { ok: false, status: 502, reason: `connect-to target ${mapping.toHost} does not resolve` };
      return { ok: true, target: { scheme, host, port, address: addresses[0]!, dialPort: mapping.toPort, mapped: true } };
    }
    let addresses: string[];
    if (isIP(host)) addresses = [host];
    else {
      try {
        addresses = await this.lookupAll(host);
      } catch (error) {
        return { ok: false, status: 502, reason: `host ${host} does not resolve (${(error as NodeJS.ErrnoException).code ?? 'error'})` };
      }
    }
    // A name that resolves to any forbidden address is refused whole: mixing a
    // public and a private answer is how DNS rebinding tries its luck.
    for (const address of addresses) {
      const why = this.forbidden(address, allowed);
      if (why) return { ok: false, status: 403, reason: `host ${host} resolves to a forbidden address: ${why}` };
    }
    return { ok: true, target: { scheme, host, port, address: addresses[0]!, dialPort: port, mapped: false } };
  }

  /**
   * The SSRF verdict for an address under one policy's IP entries, remembered
   * per policy: the answer cannot change while the policy stands, and parsing
   * and classifying every address again cost time on every request.
   */
  private forbidden(address: string, allowed: CompiledCidrs): string | null {
    let verdicts = this.verdicts.get(allowed);
    if (!verdicts) this.verdicts.set(allowed, (verdicts = new Map()));
    let why = verdicts.get(address);
    if (why === undefined) {
      why = isForbiddenAddress(address, { allowed, selfAddresses: this.selfAddresses });
      if (verdicts.size >= 10_000) verdicts.clear();
      verdicts.set(address, why);
    }
    return why;
  }

  /**
   * A keep-alive pool for one upstream (host as named, address as checked) and
   * one owner: `owner` names the session and the credential the requests carry
   * (see poolOwner), so an upstream connection is never shared between
   * sessions, nor between a credential and requests without it (connection-bound
   * auth such as NTLM, or a server that keys state by connection, must not
   * carry over). Least recently used pools are closed beyond maxPools.
   */
  pool(target: UpstreamTarget, owner: string): Pool {
    const key = `${owner}\u0000${targetKey(target)}`;
    let pool = this.pools.get(key);
    if (pool) {
      this.pools.delete(key);
      this.pools.set(key, pool);
      return pool;
    }
    const reach = sessionTarget(owner, target);
    pool = new (loadUndici().Pool)(`${target.scheme}://${hostForUrl(target.host)}:${target.port}`, {
      connections: 128,
      pipelining: 1,
      keepAliveTimeout: this.options.keepAliveTimeoutMs ?? 30_000,
      headersTimeout: this.options.headersTimeoutMs ?? 60_000,
      bodyTimeout: this.options.bodyTimeoutMs ?? 300_000,
      connect: (_opts, callback) => {
        const ahead = this.takeOpened(reach);
        const socket = ahead ? ahead.then((s) => (s.destroyed ? this.dial(target) : s), () => this.dial(target)) : this.dial(target);
        socket.then(
          (s) => callback(null, s),
          (error: Error) => callback(error, null),
        );
      },
    });
    this.pools.set(key, pool);
    let siblings = this.poolsByTarget.get(reach);
    if (!siblings) this.poolsByTarget.set(reach, (siblings = new Set()));
    siblings.add(pool);
    this.reachOf.set(pool, reach);
    const max = this.options.maxPools ?? 2048;
    if (this.pools.size > max) this.dropPool(this.pools.keys().next().value!);
    return pool;
  }

  /**
   * Opens the upstream connection of a tunnel just allowed, while its client is
   * still in its TLS handshake with the proxy, so that the first request to a
   * host this session has no open connection to does not wait for a TCP and TLS
   * handshake of its own. The target is what resolve() checked (the request's
   * own resolve must check the same address for the connection to be used).
   * The connection has carried nothing: whichever of the session's pools for
   * the target needs one first adopts it; unadopted, it is closed after openAheadIdleMs.
   */
  openAhead(target: UpstreamTarget, listenerId: number): void {
    const reach = sessionTarget(`${listenerId}|`, target);
    if (this.opened.has(reach)) return;
    for (const pool of this.poolsByTarget.get(reach) ?? []) if (pool.stats.connected > 0) return;
    const socket = this.dial(target);
    const timer = setTimeout(() => this.discardOpened(reach), this.options.openAheadIdleMs ?? 5_000);
    timer.unref();
    this.opened.set(reach, { socket, timer });
    socket.catch(() => {
      if (this.opened.get(reach)?.socket === socket) this.discardOpened(reach);
    });
  }

  private takeOpened(reach: string): Promise<Socket | TLSSocket> | undefined {
    const ahead = this.opened.get(reach);
    if (!ahead) return undefined;
    this.opened.delete(reach);
    clearTimeout(ahead.timer);
    return ahead.socket;
  }

  private discardOpened(reach: string): void {
    void this.takeOpened(reach)?.then(
      (s) => s.destroy(),
      () => undefined,
    );
  }

  private dropPool(key: string): void {
    const pool = this.pools.get(key);
    if (!pool) return;
    this.pools.delete(key);
    const reach = this.reachOf.get(pool)!;
    const siblings = this.poolsByTarget.get(reach);
    if (siblings?.delete(pool) && siblings.size === 0) this.poolsByTarget.delete(reach);
    void pool.close().catch(() => undefined);
  }

  /** Opens a connection to exactly the checked address; TLS verified against the named host. */
  dial(target: UpstreamTarget, alpn: string[] = ['http/1.1']): Promise<Socket | TLSSocket> {
    const timeoutMs = this.options.connectTimeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      let socket: Socket | TLSSocket;
      const fail = (error: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(error);
      };
      const timer = setTimeout(() => fail(Object.assign(new Error(`connect to ${target.host} timed out after ${timeoutMs} ms`), { code: 'UPSTREAM_CONNECT_TIMEOUT' })), timeoutMs);
      if (target.scheme === 'https') {
        socket = tlsConnect({
          host: target.address,
          port: target.dialPort,
          ...(isIP(target.host) ? {} : { servername: target.host }),
          secureContext: this.secureContext,
          ALPNProtocols: alpn,
          rejectUnauthorized: true,
          checkServerIdentity: (_name, cert) => checkServerIdentity(target.host, cert),
        });
        socket.once('secureConnect', () => {
          clearTimeout(timer);
          resolve(socket);
        });
      } else {
        socket = netConnect({ host: target.address, port: target.dialPort });
        socket.once('connect', () => {
          clearTimeout(timer);
          resolve(socket);
        });
      }
      // Requests and answers are small writes: Nagle's algorithm with delayed
      // ACKs would hold each one back for milliseconds.
      socket.setNoDelay(true);
      socket.once('error', fail);
    });
  }

  /** Closes the pools of one owner prefix (a listener that closed), letting requests in flight finish. */
  closeOwner(prefix: string): void {
    for (const key of [...this.pools.keys()]) if (key.startsWith(prefix)) this.dropPool(key);
    for (const reach of [...this.opened.keys()]) if (reach.startsWith(prefix)) this.discardOpened(reach);
  }

  async close(): Promise<void> {
    for (const reach of [...this.opened.keys()]) this.discardOpened(reach);
    const pools = [...this.pools.values()];
    this.pools.clear();
    this.poolsByTarget.clear();
    await Promise.all(pools.map((p) => p.destroy().catch(() => undefined)));
  }

  private async lookupAll(name: string): Promise<string[]> {
    const cached = this.dnsCache.get(name);
    if (cached && cached.expires > Date.now()) return cached.addresses;
    const results = await lookup(name, { all: true, verbatim: true });
    const addresses = results.map((r) => r.address);
    if (addresses.length === 0) throw Object.assign(new Error('no addresses'), { code: 'ENOTFOUND' });
    this.dnsCache.set(name, { addresses, expires: Date.now() + DNS_TTL_MS });
    if (this.dnsCache.size > 10_000) this.dnsCache.delete(this.dnsCache.keys().next().value!);
    return addresses;
  }
}

/**
 * Who owns an upstream pool: the listener (session) and, for a credential
 * decision, the connection whose credential is injected. Ends with a
 * separator so that closeOwner(`${id}|`) never matches another id's prefix.
 */
export function poolOwner(listenerId: number, decision: { outcome: string; bundle?: string; connection?: string }): string {
  return decision.outcome === 'credential' ? `${listenerId}|${decision.bundle}/${decision.connection}` : `${listenerId}|`;
}

function ownInterfaceAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flatMap((list) => list ?? [])
    .map((i) => i.address.replace(/%.*$/, ''));
}

function targetKey(target: UpstreamTarget): string {
  return `${target.scheme}://${target.host}:${target.port}@${target.address}:${target.dialPort}`;
}

/** A target as one session reaches it: the owner's listener part (up to its '|') and the exact checked address. */
function sessionTarget(owner: string, target: UpstreamTarget): string {
  return `${owner.slice(0, owner.indexOf('|') + 1)}${targetKey(target)}`;
}

export function hostForUrl(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

/** A short, client-safe description of why an upstream could not be reached. */
export function describeUpstreamError(error: unknown, host: string): { status: number; reason: string } {
  const code = (error as { code?: string }).code ?? '';
  const message = withoutQueries((error as Error).message ?? String(error));
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS_CERT_ALTNAME_INVALID|HOSTNAME_MISMATCH/i.test(code + message)) {
    return { status: 502, reason: `upstream TLS for ${host} could not be verified (${code || message})` };
  }
  if (code === 'UPSTREAM_CONNECT_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') return { status: 504, reason: `connect to ${host} timed out` };
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return { status: 504, reason: `${host} did not answer in time` };
  return { status: 502, reason: `upstream ${host} failed: ${code || message}` };
}
