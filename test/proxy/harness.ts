import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type PeerCertificate, type TLSSocket } from 'node:tls';
import pino from 'pino';
import { expect } from 'vitest';
import type { AuditEvent } from '../../src/audit/events.js';
import { AuditLog } from '../../src/audit/log.js';
import { parseBundleFile } from '../../src/policy/bundle-file.js';
import { compilePolicy, type EgressPolicy } from '../../src/policy/compile.js';
import { AgentProxy, type AgentProxyOptions, type ProxyLimits, type ProxyListener } from '../../src/proxy/agent-proxy.js';
import { parseConnectTo } from '../../src/proxy/connect-to.js';
import type { UpstreamOptions } from '../../src/proxy/upstream.js';
import { openControlStore, type ControlStore } from '../../src/store/database.js';
import { createCertificateAuthority, type CertificateAuthority } from '../../src/tls/certificates.js';
import type { CredentialResolver } from '../../src/vault/credentials.js';
import { createCredentialResolver } from '../../src/vault/private/resolver.js';
import { createTokenHttpClient, type TokenHttpOptions } from '../../src/vault/private/token-http.js';
import { createTestCa, type TestCa } from '../fixtures/ca.js';
import { startEchoUpstream, type EchoReply, type EchoUpstream } from '../fixtures/echo-upstream.js';
import { createTestBackend, type BackendName, type TestBackend } from '../helpers/backends.js';
import { createVaultHarness, type VaultHarness } from '../vault/harness.js';

/**
 * One Agent Proxy in front of the echo upstream, for attack tests over real
 * sockets. Every test name below (echo.test, api.echo.test, ...) is mapped with
 * connect-to to the echo upstream on loopback; the upstream's CA is trusted via
 * extraCaPem; the credential comes from a real vault (Sealer + Opener) whose
 * credential-use events go to the same audit log as the proxy's.
 */
export const MAPPED_NAMES = ['echo.test', 'api.echo.test', 'other.echo.test', 'evil.test', 'pass.echo.test', 'nopass.echo.test'];

/** Mapped to the echo upstream, but not named in its certificate. */
export const UNCERTIFIED_NAMES = ['unnamed.test'];

export const DEFAULT_BUNDLES = `
bundles:
  - name: base
    domains:
      - echo.test
      - other.echo.test
      - example.com
      - "*.example.com"
      - pass.echo.test
    connections:
      - name: echo-api
        secret: echo-token
        allowedWebsites: [api.echo.test]
        inject:
          header: Authorization
          value: "Bearer {{secret}}"
        narrow:
          pathPrefix: /repos/acme/
          readOnly: true
`;

export function policyOf(yaml: string): EgressPolicy {
  return compilePolicy(parseBundleFile(yaml, 'test-bundles.yaml').bundles);
}

export interface HarnessOptions {
  bundles?: string;
  backend?: BackendName;
  limits?: Partial<ProxyLimits>;
  passthrough?: string[];
  /** Extra connect-to entries (host:port:127.0.0.1:port). */
  connectTo?: string[];
  /** Upstream options besides connect-to and the upstream CA. */
  upstream?: Partial<Omit<UpstreamOptions, 'connectTo' | 'extraCaPem'>>;
  session?: string;
  /** false: the proxy has no resolver at all. */
  vault?: boolean;
  /** When given, the proxy logs (level trace, JSON lines) into this array. */
  logLines?: string[];
  onBlocked?: AgentProxyOptions['onBlocked'];
  onGithub?: AgentProxyOptions['onGithub'];
  /** The CA the upstreams' certificates come from (default: a fresh one); e.g. the fake GitHub's. */
  upstreamCa?: TestCa;
  /** The token endpoint client's options (GitHub App, OAuth 2.0): its connect-to and extra CA. */
  tokenHttp?: TokenHttpOptions;
}

export interface Harness {
  proxy: AgentProxy;
  listener: ProxyListener;
  port: number;
  proxyUrl: string;
  echo: EchoUpstream;
  upstreamCa: TestCa;
  deployCa: CertificateAuthority;
  deployCaFile: string;
  backend: TestBackend;
  store: ControlStore;
  audit: AuditLog;
  vault: VaultHarness | undefined;
  secret: string;
  dir: string;
  /** Replaces the resolver behind the proxy (undefined: back to the real vault). */
  setResolver(resolver: CredentialResolver | undefined): void;
  curl(url: string, args?: string[], via?: string): Promise<CurlResult>;
  /** Sends raw bytes to the proxy and returns everything received until it closes (or timeoutMs). */
  raw(data: string | Buffer, options?: { timeoutMs?: number; path?: string }): Promise<string>;
  /** The highest audit seq so far: events after it belong to what follows. */
  mark(): Promise<number>;
  /** Egress events after `mark`, once `count` of them are committed (then a short quiet wait to catch extras). */
  egressSince(mark: number, count: number): Promise<AuditEvent[]>;
  /** Echo requests received since `n`. */
  receivedSince(n: number): EchoReply[];
  /** An allowed HTTPS request through the proxy still succeeds. */
  expectServing(): Promise<void>;
  close(): Promise<void>;
}

export interface CurlResult {
  code: number;
  status: number;
  connectStatus: number;
  headers: string;
  body: string;
  stderr: string;
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'tagbox-proxy-test-'));
  const upstreamCa = options.upstreamCa ?? (await createTestCa('Tagbox Test Upstream CA'));
  const echo = await startEchoUpstream({ ca: upstreamCa, names: [...MAPPED_NAMES, '*.echo.test', 'localhost', '127.0.0.1'] });
  const deployCa = await createCertificateAuthority({ commonName: 'Tagbox Test Deployment CA', validDays: 2 });
  const deployCaFile = join(dir, 'deploy-ca.pem');
  writeFileSync(deployCaFile, deployCa.certPem);

  const backend = await createTestBackend(options.backend ?? 'sqlite');
  const store = await openControlStore(backend.location);
  const audit = new AuditLog(store);
  const secret = `s3cr3t-${randomBytes(12).toString('hex')}`;
  let vault: VaultHarness | undefined;
  let realResolver: CredentialResolver | undefined;
  if (options.vault !== false) {
    vault = await createVaultHarness(backend.sibling('vault'));
    await vault.sealer.put('echo-token', Buffer.from(secret));
    const opener = await vault.opener({ audit });
    realResolver = createCredentialResolver({ opener, http: createTokenHttpClient(options.tokenHttp ?? {}) });
  }
  let current = realResolver;
  const resolver: CredentialResolver | undefined = realResolver && {
    // Every argument passes on: a GitHub App token's mint narrowing is the third.
    resolve: (...args) => current!.resolve(...args),
  };

  const connectTo = parseConnectTo([
    ...[...MAPPED_NAMES, ...UNCERTIFIED_NAMES].flatMap((n) => [`${n}:443:127.0.0.1:${echo.httpsPort}`, `${n}:80:127.0.0.1:${echo.httpPort}`]),
    ...(options.connectTo ?? []),
  ]);
  const proxy = new AgentProxy({
    ca: deployCa,
    audit,
    ...(resolver ? { resolver } : {}),
    upstream: { ...options.upstream, connectTo, extraCaPem: upstreamCa.certPem },
    ...(options.passthrough ? { passthrough: options.passthrough } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.onBlocked ? { onBlocked: options.onBlocked } : {}),
    ...(options.onGithub ? { onGithub: options.onGithub } : {}),
    ...(options.logLines ? { logger: pino({ level: 'trace' }, { write: (line: string) => void options.logLines!.push(line) }) } : {}),
  });
  const listener = await proxy.listen({ host: '127.0.0.1', port: 0 }, { ...(options.session ? { session: options.session } : {}), policy: policyOf(options.bundles ?? DEFAULT_BUNDLES) });
  const port = listener.port!;
  const proxyUrl = `http://127.0.0.1:${port}`;

  const h: Harness = {
    proxy,
    listener,
    port,
    proxyUrl,
    echo,
    upstreamCa,
    deployCa,
    deployCaFile,
    backend,
    store,
    audit,
    vault,
    secret,
    dir,
    setResolver: (r) => (current = r ?? realResolver),
    curl: (url, args = [], via = proxyUrl) => curl(url, ['-x', via, '--cacert', deployCaFile, ...args], dir),
    raw: (data, o = {}) => rawExchange(o.path ? { path: o.path } : { port }, data, o.timeoutMs ?? 3000),
    mark: async () => {
      await proxy.flushAudit();
      let last = 0;
      for await (const e of audit.query({})) last = Math.max(last, e.seq);
      return last;
    },
    egressSince: async (mark, count) => {
      const read = async () => {
        await proxy.flushAudit();
        const out: AuditEvent[] = [];
        for await (const e of audit.query({ type: 'egress' })) if (e.seq > mark) out.push(e);
        return out;
      };
      const deadline = Date.now() + 5000;
      let events = await read();
      while (events.length < count && Date.now() < deadline) {
        await sleep(20);
        events = await read();
      }
      await sleep(100);
      return read();
    },
    receivedSince: (n) => echo.received.slice(n),
    expectServing: async () => {
      const r = await h.curl('https://echo.test/still-serving');
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body)).toMatchObject({ path: '/still-serving' });
    },
    close: async () => {
      await proxy.close();
      await echo.close();
      await vault?.close();
      await store.close();
      await backend.cleanup();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return h;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Real curl. status: the final HTTP status (0 when none); connectStatus: the CONNECT answer. */
export function curl(url: string, args: string[], dir: string): Promise<CurlResult> {
  const headerFile = join(dir, `h-${randomBytes(6).toString('hex')}`);
  const full = ['-sS', '--max-time', '10', '-D', headerFile, '-w', '\n__CURL__%{http_code} %{http_connect}', ...args, url];
  return new Promise((resolve) => {
    execFile('curl', full, { maxBuffer: 10 * 1024 * 1024 }, (error, stdout, stderr) => {
      const i = stdout.lastIndexOf('\n__CURL__');
      const [status, connectStatus] = stdout.slice(i + 9).trim().split(' ').map(Number);
      let headers = '';
      try {
        headers = readFileSync(headerFile, 'utf8');
        rmSync(headerFile);
      } catch {
        /* no headers */
      }
      resolve({
        code: error ? Number((error as { code?: number }).code ?? 1) : 0,
        status: status ?? 0,
        connectStatus: connectStatus ?? 0,
        headers,
        body: stdout.slice(0, i),
        stderr,
      });
    });
  });
}

export function rawExchange(where: { port: number } | { path: string }, data: string | Buffer, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const socket = 'path' in where ? netConnect({ path: where.path }) : netConnect({ host: '127.0.0.1', port: where.port });
    const chunks: Buffer[] = [];
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    };
    const timer = setTimeout(done, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('close', done);
    socket.on('error', done);
    socket.write(data);
  });
}

/** Status code of the first response in a raw answer (0 when none). */
export function statusOf(raw: string): number {
  return Number(/^HTTP\/1\.[01] (\d{3})/.exec(raw)?.[1] ?? 0);
}

export interface TunnelResult {
  connectStatus: number;
  connectResponse: string;
  /** Everything read after the TLS handshake until close or timeout. */
  response: string;
  peer?: PeerCertificate;
  tlsError?: string;
}

/**
 * CONNECT `target` through the proxy, then TLS with `servername` (trusting `ca`),
 * send `request`, read the answer. For SNI, Host and passthrough games.
 */
export function tlsThroughConnect(
  where: { port: number } | { path: string },
  options: { target: string; servername?: string; ca: string; request?: string; connectHeaders?: string; timeoutMs?: number },
): Promise<TunnelResult> {
  const timeoutMs = options.timeoutMs ?? 5000;
  return new Promise((resolve) => {
    const socket: Socket = 'path' in where ? netConnect({ path: where.path }) : netConnect({ host: '127.0.0.1', port: where.port });
    let buffered = Buffer.alloc(0);
    const timer = setTimeout(() => finish({ connectStatus: 0, connectResponse: buffered.toString('latin1'), response: '' }), timeoutMs);
    let settled = false;
    const finish = (r: TunnelResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    socket.on('error', () => finish({ connectStatus: 0, connectResponse: buffered.toString('latin1'), response: '' }));
    socket.on('close', () => finish({ connectStatus: statusOf(buffered.toString('latin1')), connectResponse: buffered.toString('latin1'), response: '' }));
    const onData = (c: Buffer) => {
      buffered = Buffer.concat([buffered, c]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      const connectResponse = buffered.subarray(0, end + 4).toString('latin1');
      const connectStatus = statusOf(connectResponse);
      if (connectStatus !== 200) return finish({ connectStatus, connectResponse: buffered.toString('latin1'), response: '' });
      socket.removeAllListeners('close');
      socket.removeAllListeners('error');
      const tls: TLSSocket = tlsConnect({ socket, ...(options.servername !== undefined ? { servername: options.servername } : {}), ca: options.ca, ALPNProtocols: ['http/1.1'],
        // SNI games: the chain is still verified; the name check is the proxy's business here.
        checkServerIdentity: () => undefined });
      const chunks: Buffer[] = [];
      const done = (tlsError?: string) =>
        finish({ connectStatus, connectResponse, response: Buffer.concat(chunks).toString('latin1'), ...(peer ? { peer } : {}), ...(tlsError ? { tlsError } : {}) });
      let peer: PeerCertificate | undefined;
      tls.on('secureConnect', () => {
        peer = tls.getPeerCertificate();
        if (options.request) tls.write(options.request);
        else done();
      });
      tls.on('data', (d: Buffer) => chunks.push(d));
      tls.on('error', (e: Error) => done(e.message));
      tls.on('close', () => done());
    };
    socket.on('data', onData);
    socket.write(`CONNECT ${options.target} HTTP/1.1\r\nHost: ${options.target}\r\n${options.connectHeaders ?? ''}\r\n`);
  });
}

/** A tiny WebSocket-ish upstream: answers any upgrade with 101 and echoes bytes back, prefixed. */
export async function startWsUpstream(): Promise<{ port: number; upgrades: string[]; close(): Promise<void> }> {
  const upgrades: string[] = [];
  const server: Server = createHttpServer((_req, res) => res.end('no upgrade\n'));
  server.on('upgrade', (req, socket: Socket) => {
    upgrades.push(`${req.method} ${req.url} auth=${req.headers.authorization ?? ''}`);
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n');
    socket.on('data', (d: Buffer) => socket.write(Buffer.concat([Buffer.from('echo:'), d])));
    socket.on('end', () => socket.end());
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    upgrades,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/** An HTTPS server whose certificate comes from a CA nobody trusts. */
export async function startUntrustedUpstream(names: string[]): Promise<{ port: number; hits: number[]; close(): Promise<void> }> {
  const rogue = await createTestCa('Rogue CA');
  const leaf = await rogue.issue(names);
  const hits: number[] = [];
  const server = createHttpsServer({ cert: leaf.certPem, key: leaf.keyPem }, (_req, res) => {
    hits.push(Date.now());
    res.end('should never be seen\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    hits,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}
