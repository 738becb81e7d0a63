import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProxy } from '../../src/proxy/agent-proxy.js';
import { parseConnectTo } from '../../src/proxy/connect-to.js';
import type { EchoReply } from '../fixtures/echo-upstream.js';
import { DEFAULT_BUNDLES, policyOf, startHarness, statusOf, tlsThroughConnect, type Harness } from './harness.js';

/**
 * Invariant 3: a credential travels only to its connection's hosts, narrowed as
 * configured, and replaces any client-supplied value. Invariant 7: fail closed.
 * The default bundle gives api.echo.test the credential for GET/HEAD/OPTIONS
 * under /repos/acme/ only; outside that, the host is merely allowlisted.
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h?.close());

/** Sends one request over an intercepted tunnel to api.echo.test, as raw bytes. */
async function viaTunnel(host: string, requestLine: string, extraHeaders = '', body = '') {
  const before = h.echo.received.length;
  const r = await tlsThroughConnect(
    { port: h.port },
    {
      target: `${host}:443`,
      servername: host,
      ca: h.deployCa.certPem,
      request: `${requestLine}\r\nHost: ${host}\r\n${extraHeaders}${body ? `Content-Length: ${body.length}\r\n` : ''}Connection: close\r\n\r\n${body}`,
    },
  );
  return { status: statusOf(r.response), response: r.response, received: h.receivedSince(before) };
}

function authValues(reply: EchoReply): string[] {
  const out: string[] = [];
  for (let i = 0; i < reply.rawHeaders.length; i += 2) if (reply.rawHeaders[i]!.toLowerCase() === 'authorization') out.push(reply.rawHeaders[i + 1]!);
  return out;
}

function expectNoCredential(received: EchoReply[]) {
  for (const reply of received) {
    expect(JSON.stringify(reply)).not.toContain(h.secret);
  }
}

describe('credential injection', () => {
  it('inside the narrowing: the credential is injected (curl, control)', async () => {
    const before = h.echo.received.length;
    const mark = await h.mark();
    const r = await h.curl('https://api.echo.test/repos/acme/widgets?page=2');
    expect(r.status).toBe(200);
    const [reply] = h.receivedSince(before);
    expect(authValues(reply!)).toEqual([`Bearer ${h.secret}`]);
    const events = await h.egressSince(mark, 1);
    const egress = events.filter((e) => e.type === 'egress');
    expect(egress).toHaveLength(1);
    expect(egress[0]).toMatchObject({ outcome: 'credential', connection: 'echo-api', bundle: 'base', host: 'api.echo.test', path: '/repos/acme/widgets', status: 200 });
  });

  it('replaces any client-supplied value, duplicates and other cases included', async () => {
    const r = await viaTunnel('api.echo.test', 'GET /repos/acme/x HTTP/1.1', 'Authorization: Bearer mine\r\nauthorization: Basic Zm9vOmJhcg==\r\nAUTHORIZATION: token theirs\r\n');
    expect(r.status).toBe(200);
    expect(r.received).toHaveLength(1);
    expect(authValues(r.received[0]!)).toEqual([`Bearer ${h.secret}`]);
  });

  const PLAIN = (optIn: string) =>
    policyOf(`bundles:\n  - name: plain\n    domains: [echo.test]\n    connections:\n      - name: c\n        secret: echo-token\n        allowedWebsites: [{host: api.echo.test, ports: [80, 443]}]\n        inject:\n          header: X-Api-Key\n          value: "{{secret}}"\n${optIn}`);

  it('never over plain HTTP: absolute-form http:// (port 80 or 443) and plain HTTP inside a CONNECT tunnel are blocked, nothing is sent', async () => {
    h.listener.setPolicy(PLAIN(''));
    try {
      const before = h.echo.received.length;
      const mark = await h.mark();
      for (const port of [80, 443]) {
        const r = await h.raw(`GET http://api.echo.test:${port}/k HTTP/1.1\r\nHost: api.echo.test:${port}\r\nx-api-key: mine\r\nConnection: close\r\n\r\n`);
        expect(statusOf(r), `port ${port}`).toBe(403);
        expect(r.toLowerCase()).toContain('x-tagbox-decision: blocked');
        expect(r).toContain('host api.echo.test matches connection plain/c');
        expect(r).toContain('use https://api.echo.test/');
      }
      // CONNECT, then plain HTTP instead of TLS: the upstream leg would be plain too.
      const tunnelled = await h.raw('CONNECT api.echo.test:443 HTTP/1.1\r\nHost: api.echo.test:443\r\n\r\nGET /k HTTP/1.1\r\nHost: api.echo.test\r\nConnection: close\r\n\r\n');
      expect(tunnelled).toMatch(/^HTTP\/1\.1 200 [^]*HTTP\/1\.1 403 /);
      expect(h.receivedSince(before)).toEqual([]);
      const events = await h.egressSince(mark, 3);
      expect(events.map((e) => [e.scheme, e.outcome, e.connection, e.status])).toEqual([
        ['http', 'blocked', 'c', 403],
        ['http', 'blocked', 'c', 403],
        ['http', 'blocked', 'c', 403],
      ]);
      for (const e of events) expect(JSON.stringify(e)).not.toContain(h.secret);
      // The same connection over TLS still gets it.
      const ok = await viaTunnel('api.echo.test', 'GET /k HTTP/1.1');
      expect(ok.received[0]!.headers['x-api-key']).toBe(h.secret);
    } finally {
      h.listener.setPolicy(policyOf(DEFAULT_BUNDLES));
    }
    await h.expectServing();
  });

  it('over plain HTTP with plainHttp: true on the connection: injected, replacing the client value', async () => {
    h.listener.setPolicy(PLAIN('        plainHttp: true\n'));
    try {
      const before = h.echo.received.length;
      const r = await h.raw('GET http://api.echo.test/k HTTP/1.1\r\nHost: api.echo.test\r\nx-api-key: mine\r\nX-API-KEY: mine2\r\nConnection: close\r\n\r\n');
      expect(statusOf(r)).toBe(200);
      const [reply] = h.receivedSince(before);
      const keys = reply!.rawHeaders.filter((_, i) => i % 2 === 0 && reply!.rawHeaders[i]!.toLowerCase() === 'x-api-key');
      expect(keys).toHaveLength(1);
      expect(reply!.headers['x-api-key']).toBe(h.secret);
    } finally {
      h.listener.setPolicy(policyOf(DEFAULT_BUNDLES));
    }
  });
});

describe('path-prefix escapes: the host is allowlisted, but no credential goes out', () => {
  const escapes = [
    '/repos/acme/../other/x',
    '/repos/acme/%2e%2e/other/x',
    '/repos/acme/%2E%2E/other/x',
    '/repos/acme/.%2e/other/x',
    '/repos/acme%2fx',
    '/repos/acme%2F..%2Fother',
    '/repos/acme-evil/x',
    '/repos/acmeevil/x',
    '/repos/acme',
    '/REPOS/ACME/x',
    '/Repos/acme/x',
    '/repos/Acme/x',
    '/other/../repos/acme/../../x',
    '//repos/acme/x',
  ];
  for (const path of escapes) {
    it(`${path}`, async () => {
      const mark = await h.mark();
      const r = await viaTunnel('api.echo.test', `GET ${path} HTTP/1.1`);
      expect(r.status).toBe(200);
      expect(r.received).toHaveLength(1);
      expect(authValues(r.received[0]!)).toEqual([]);
      expectNoCredential(r.received);
      const [event] = await h.egressSince(mark, 1);
      expect(event).toMatchObject({ outcome: 'allowlist' });
    });
  }

  it('curl --path-as-is with .. gets no credential either', async () => {
    const before = h.echo.received.length;
    const r = await h.curl('https://api.echo.test/repos/acme/../../admin', ['--path-as-is']);
    expect(r.status).toBe(200);
    expectNoCredential(h.receivedSince(before));
  });

  it('a dot-segment that stays inside the prefix still gets it (normalisation, not refusal)', async () => {
    const r = await viaTunnel('api.echo.test', 'GET /repos/acme/a/../b HTTP/1.1');
    expect(authValues(r.received[0]!)).toEqual([`Bearer ${h.secret}`]);
  });
});

describe('method narrowing (readOnly)', () => {
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
    it(`${method} inside the prefix: forwarded without the credential`, async () => {
      const r = await viaTunnel('api.echo.test', `${method} /repos/acme/x HTTP/1.1`, 'Authorization: Bearer mine\r\n', 'body');
      expect(r.status).toBe(200);
      expect(r.received).toHaveLength(1);
      expect(r.received[0]!.method).toBe(method);
      expectNoCredential(r.received);
    });
  }

  it('lower-case get is not GET: no credential', async () => {
    const r = await viaTunnel('api.echo.test', 'get /repos/acme/x HTTP/1.1');
    // Node's parser refuses an unknown method (400); either way no credential leaves.
    expectNoCredential(r.received);
    expect(r.received.every((x) => authValues(x).length === 0)).toBe(true);
  });

  it('X-HTTP-Method-Override: GET on a POST does not help', async () => {
    const r = await viaTunnel('api.echo.test', 'POST /repos/acme/x HTTP/1.1', 'X-HTTP-Method-Override: GET\r\nX-Method-Override: GET\r\n', '{}');
    expect(r.status).toBe(200);
    expectNoCredential(r.received);
  });

  it('a GET carrying a method override gets the credential, but never the override', async () => {
    // Some frameworks would run GET + X-HTTP-Method-Override: DELETE as a DELETE,
    // with the read-only credential attached. The proxy strips the override.
    const r = await viaTunnel('api.echo.test', 'GET /repos/acme/x HTTP/1.1', 'X-HTTP-Method-Override: DELETE\r\nX-HTTP-Method: DELETE\r\nX-Method-Override: DELETE\r\n');
    expect(authValues(r.received[0]!)).toEqual([`Bearer ${h.secret}`]);
    const names = r.received[0]!.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    expect(names.filter((n) => n.includes('method'))).toEqual([]);
  });

  it('HEAD and OPTIONS are read-only: injected', async () => {
    for (const method of ['HEAD', 'OPTIONS']) {
      const r = await viaTunnel('api.echo.test', `${method} /repos/acme/x HTTP/1.1`);
      expect(authValues(r.received[0]!), method).toEqual([`Bearer ${h.secret}`]);
    }
    await h.expectServing();
  });
});

describe('the credential never leaves its connection', () => {
  it('an allowlisted host outside allowedWebsites never gets it, whatever the path', async () => {
    for (const host of ['echo.test', 'other.echo.test']) {
      const r = await viaTunnel(host, 'GET /repos/acme/x HTTP/1.1');
      expect(r.status).toBe(200);
      expectNoCredential(r.received);
    }
  });

  it('redirects go back to the client and are not followed (even to another host, with the credential request)', async () => {
    const before = h.echo.received.length;
    const mark = await h.mark();
    const r = await h.curl(`https://echo.test/redirect?to=${encodeURIComponent('https://evil.test/steal')}`);
    expect(r.status).toBe(302);
    expect(r.headers).toMatch(/location: https:\/\/evil\.test\/steal/i);
    await new Promise((res) => setTimeout(res, 200));
    expect(h.receivedSince(before).map((x) => x.path)).toEqual([`/redirect?to=${encodeURIComponent('https://evil.test/steal')}`]);
    const events = await h.egressSince(mark, 1);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ outcome: 'allowlist', status: 302, host: 'echo.test' });
    // And when the client follows it, the next request is decided afresh: evil.test is blocked.
    const follow = await h.curl(`https://echo.test/redirect?to=${encodeURIComponent('https://evil.test/steal')}`, ['-L']);
    expect(follow.connectStatus).toBe(403);
    expect(h.receivedSince(before).filter((x) => x.path === '/steal')).toHaveLength(0);
  });
});

describe('fail closed', () => {
  it('the vault resolver throws: 403 blocked with a reason, the upstream receives nothing', async () => {
    h.setResolver({ resolve: () => Promise.reject(new Error('vault sealed')) });
    try {
      const before = h.echo.received.length;
      const mark = await h.mark();
      const r = await h.curl('https://api.echo.test/repos/acme/x');
      expect(r.status).toBe(403);
      expect(r.headers).toMatch(/x-tagbox-decision: blocked/i);
      expect(r.body).toMatch(/credential for base\/echo-api unavailable: .*vault sealed/);
      expect(h.receivedSince(before)).toHaveLength(0);
      const [event] = await h.egressSince(mark, 1);
      expect(event).toMatchObject({ outcome: 'blocked', connection: 'echo-api', status: 403 });
      // Requests that need no credential are unaffected.
      await h.expectServing();
    } finally {
      h.setResolver(undefined);
    }
  });

  it('the vault is closed (down): blocked, nothing sent bare', async () => {
    const { createVaultHarness } = await import('../vault/harness.js');
    const { createCredentialResolver } = await import('../../src/vault/private/resolver.js');
    const { createTokenHttpClient } = await import('../../src/vault/private/token-http.js');
    const v = await createVaultHarness(h.backend.sibling('vault2'));
    await v.sealer.put('echo-token', Buffer.from('other-secret'));
    h.setResolver(createCredentialResolver({ opener: await v.opener(), http: createTokenHttpClient({}) }));
    try {
      const ok = await h.curl('https://api.echo.test/repos/acme/x');
      expect(ok.status).toBe(200);
      await v.close();
      const before = h.echo.received.length;
      const r = await h.curl('https://api.echo.test/repos/acme/x');
      expect(r.status).toBe(403);
      expect(h.receivedSince(before)).toHaveLength(0);
    } finally {
      h.setResolver(undefined);
    }
  });

  it('a proxy with no vault blocks credential requests and serves the rest', async () => {
    const proxy = new AgentProxy({
      ca: h.deployCa,
      audit: h.audit,
      upstream: { connectTo: parseConnectTo([`api.echo.test:443:127.0.0.1:${h.echo.httpsPort}`, `echo.test:443:127.0.0.1:${h.echo.httpsPort}`]), extraCaPem: h.upstreamCa.certPem },
    });
    const l = await proxy.listen({ host: '127.0.0.1', port: 0 }, { policy: policyOf(DEFAULT_BUNDLES) });
    try {
      const before = h.echo.received.length;
      const r = await h.curl('https://api.echo.test/repos/acme/x', [], `http://127.0.0.1:${l.port}`);
      expect(r.status).toBe(403);
      expect(r.body).toMatch(/no vault/);
      expect(h.receivedSince(before)).toHaveLength(0);
      const ok = await h.curl('https://echo.test/x', [], `http://127.0.0.1:${l.port}`);
      expect(ok.status).toBe(200);
    } finally {
      await proxy.close();
    }
  });

  it('the proxy is down: the client gets no answer and nothing reaches the upstream', async () => {
    const proxy = new AgentProxy({ ca: h.deployCa, audit: h.audit, upstream: { connectTo: [] } });
    const l = await proxy.listen({ host: '127.0.0.1', port: 0 }, { policy: policyOf(DEFAULT_BUNDLES) });
    const port = l.port!;
    await proxy.close();
    const before = h.echo.received.length;
    const r = await h.curl('https://api.echo.test/repos/acme/x', [], `http://127.0.0.1:${port}`);
    expect(r.code).not.toBe(0);
    expect(r.status).toBe(0);
    expect(h.receivedSince(before)).toHaveLength(0);
  });
});
