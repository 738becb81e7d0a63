import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProxyListener } from '../../src/proxy/agent-proxy.js';
import { createTestCa } from '../fixtures/ca.js';
import { DEFAULT_BUNDLES, policyOf, sleep, startHarness, tlsThroughConnect, type Harness } from './harness.js';

/**
 * The upstream connection of an intercepted tunnel opens while the client is
 * still in its TLS handshake with the proxy (Upstreams.openAhead), so a first
 * request to a host does not wait for a handshake of its own. These tests
 * watch an upstream that counts TLS connections: the connection opened ahead
 * is the one the first request uses, is never handed to another session, is
 * not opened when the session already holds one, and is closed when unused.
 */
interface CountingUpstream {
  port: number;
  /** Client port of every TLS connection accepted, in order. */
  accepted: number[];
  /** Client ports of the connections that closed. */
  closed: Set<number>;
  /** Client port each request came in on. */
  requests: number[];
  close(): Promise<void>;
}

const HOSTS = ['one.example.com', 'two.example.com', 'three.example.com', 'four.example.com'];
const IDLE_MS = 400;

let h: Harness;
let up: CountingUpstream;
let other: ProxyListener;

async function startCountingUpstream(issue: (names: string[]) => Promise<{ certPem: string; keyPem: string }>): Promise<CountingUpstream> {
  const leaf = await issue(HOSTS);
  const accepted: number[] = [];
  const closed = new Set<number>();
  const requests: number[] = [];
  const server: Server = createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
    requests.push(req.socket.remotePort ?? 0);
    res.end('ok');
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    const port = socket.remotePort ?? 0;
    accepted.push(port);
    socket.once('close', () => closed.add(port));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    accepted,
    closed,
    requests,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

async function until(what: string, check: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

beforeAll(async () => {
  const upstreamCa = await createTestCa('Open Ahead Upstream CA');
  up = await startCountingUpstream((names) => upstreamCa.issue(names));
  h = await startHarness({ upstreamCa, connectTo: HOSTS.map((n) => `${n}:443:127.0.0.1:${up.port}`), upstream: { openAheadIdleMs: IDLE_MS } });
  other = await h.proxy.listen({ host: '127.0.0.1', port: 0 }, { session: 'other-session', policy: policyOf(DEFAULT_BUNDLES) });
});
afterAll(async () => {
  await h?.close();
  await up?.close();
});

describe('the upstream connection opened ahead of a tunnel', () => {
  it("is the one the tunnel's first request uses: one upstream connection, not two", async () => {
    const before = up.accepted.length;
    const r = await h.curl('https://one.example.com/first');
    expect(r.status).toBe(200);
    expect(up.accepted.slice(before)).toHaveLength(1);
    expect(up.requests.at(-1)).toBe(up.accepted.at(-1));
  });

  it('is opened for a tunnel that never sends a request, and closed when it stays unused', async () => {
    const before = up.accepted.length;
    const t = await tlsThroughConnect({ port: h.port }, { target: 'two.example.com:443', servername: 'two.example.com', ca: h.deployCa.certPem });
    expect(t.connectStatus).toBe(200);
    expect(t.tlsError).toBeUndefined();
    await until('the connection opened ahead', () => up.accepted.length > before);
    const ahead = up.accepted[before]!;
    expect(up.closed.has(ahead)).toBe(false);
    await until('the unused connection to close', () => up.closed.has(ahead), IDLE_MS + 3000);
    expect(up.requests).not.toContain(ahead);
  });

  it("is never adopted by another session's request", async () => {
    const before = up.accepted.length;
    // Session one opens a tunnel and says nothing: its connection waits, unused.
    const idle = await tlsThroughConnect({ port: h.port }, { target: 'three.example.com:443', servername: 'three.example.com', ca: h.deployCa.certPem });
    expect(idle.connectStatus).toBe(200);
    await until('the connection opened ahead', () => up.accepted.length > before);
    const ahead = up.accepted[before]!;
    // The other session asks the same host while it waits.
    const r = await h.curl('https://three.example.com/other', [], `http://127.0.0.1:${other.port}`);
    expect(r.status).toBe(200);
    expect(up.requests.at(-1)).not.toBe(ahead);
    await until('the unused connection to close', () => up.closed.has(ahead), IDLE_MS + 3000);
    expect(up.requests).not.toContain(ahead);
  });

  it('is not opened when the session already holds an open connection to the host', async () => {
    expect((await h.curl('https://four.example.com/a')).status).toBe(200);
    const before = up.accepted.length;
    for (let i = 0; i < 3; i++) expect((await h.curl(`https://four.example.com/again-${i}`)).status).toBe(200);
    await sleep(100);
    // Each curl is a new tunnel; the kept-alive upstream connection serves them all.
    expect(up.accepted.length).toBe(before);
    expect(new Set(up.requests.slice(-4)).size).toBe(1);
  });
});
