import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProxyListener } from '../../src/proxy/agent-proxy.js';
import { DEFAULT_BUNDLES, policyOf, startHarness, type Harness } from './harness.js';

/**
 * Upstream keep-alive connections are never shared between sessions, nor
 * between requests that carry a credential and requests that do not: an
 * upstream that authenticates a connection (NTLM, Negotiate) or keys state by
 * connection would otherwise let one session ride on another's login, or let
 * an allowlisted request ride on the credential's. The echo upstream reports
 * the client port of the connection each request came in on.
 */
let h: Harness;
let a: ProxyListener;
let b: ProxyListener;
beforeAll(async () => {
  h = await startHarness();
  a = await h.proxy.listen({ host: '127.0.0.1', port: 0 }, { session: 'sess-a', policy: policyOf(DEFAULT_BUNDLES) });
  b = await h.proxy.listen({ host: '127.0.0.1', port: 0 }, { session: 'sess-b', policy: policyOf(DEFAULT_BUNDLES) });
});
afterAll(async () => h?.close());

async function upstreamPorts(listener: ProxyListener, url: string): Promise<number> {
  const before = h.echo.received.length;
  const r = await h.curl(url, [], `http://127.0.0.1:${listener.port}`);
  expect(r.status).toBe(200);
  const got = h.receivedSince(before);
  expect(got).toHaveLength(1);
  return got[0]!.remotePort;
}

describe('upstream pools are per session and per credential', () => {
  it('two sessions to the same upstream, interleaved, never share an upstream TCP connection', async () => {
    const ports = { a: new Set<number>(), b: new Set<number>() };
    for (let i = 0; i < 6; i++) {
      ports.a.add(await upstreamPorts(a, `https://echo.test/a${i}`));
      ports.b.add(await upstreamPorts(b, `https://echo.test/b${i}`));
    }
    // Keep-alive works within a session (so sharing would have been visible)...
    expect(ports.a.size).toBeLessThan(6);
    expect(ports.b.size).toBeLessThan(6);
    // ...and the two sessions' connections are disjoint.
    expect([...ports.a].filter((p) => ports.b.has(p))).toEqual([]);
    await h.expectServing();
  });

  it('in one session, credential requests and requests without it use different upstream connections', async () => {
    const withCredential = new Set<number>();
    const without = new Set<number>();
    for (let i = 0; i < 4; i++) {
      const before = h.echo.received.length;
      withCredential.add(await upstreamPorts(a, `https://api.echo.test/repos/acme/x${i}`));
      expect(h.receivedSince(before)[0]!.headers.authorization).toBe(`Bearer ${h.secret}`);
      without.add(await upstreamPorts(a, `https://api.echo.test/other/x${i}`));
    }
    expect([...withCredential].filter((p) => without.has(p))).toEqual([]);
  });

  it("closing a session's listener drops its pools only: the other session keeps its warm connection", async () => {
    const extra = await h.proxy.listen({ host: '127.0.0.1', port: 0 }, { session: 'sess-c', policy: policyOf(DEFAULT_BUNDLES) });
    const bBefore = await upstreamPorts(b, 'https://echo.test/before-close');
    const cPort = await upstreamPorts(extra, 'https://echo.test/c');
    expect(cPort).not.toBe(bBefore);
    await extra.close();
    expect(await upstreamPorts(b, 'https://echo.test/after-close')).toBe(bBefore);
  });
});
