import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { policyOf, startHarness, statusOf, DEFAULT_BUNDLES, type Harness } from './harness.js';

/**
 * IP literals in every encoding, private and metadata ranges, names that
 * resolve to loopback, and wildcard confusion. The policy blocks unknown
 * hosts anyway, so the SSRF guard itself is proven with bundles that allow a
 * *name* resolving to loopback (`localhost`): the guard must refuse it, while
 * an explicit IP entry in domains makes that address reachable.
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h?.close());

const get = (uri: string, host: string) => `GET ${uri} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;

describe('IP literal encodings and IPv6 forms', () => {
  const loopbacks = [
    ['decimal', '2130706433'],
    ['hex', '0x7f000001'],
    ['dotted hex', '0x7f.0x0.0x0.0x1'],
    ['octal', '0177.0.0.1'],
    ['short', '127.1'],
    ['short 2', '127.0.1'],
    ['IPv4-mapped', '[::ffff:127.0.0.1]'],
    ['IPv4-mapped hex', '[::ffff:7f00:1]'],
    ['NAT64', '[64:ff9b::7f00:1]'],
    ['6to4', '[2002:7f00:1::1]'],
    ['IPv6 loopback', '[::1]'],
    ['IPv6 loopback long', '[0:0:0:0:0:0:0:1]'],
    ['unspecified', '0.0.0.0'],
    ['zero', '0'],
  ];
  for (const [name, host] of loopbacks) {
    it(`plain HTTP to ${name} ${host}: 403 blocked, nothing reached`, async () => {
      const before = h.echo.received.length;
      const mark = await h.mark();
      const r = await h.raw(get(`http://${host}:${h.echo.httpPort}/x`, `${host}:${h.echo.httpPort}`));
      expect(statusOf(r)).toBe(403);
      expect(r.toLowerCase()).toContain('x-tagbox-decision: blocked');
      expect(h.receivedSince(before)).toHaveLength(0);
      const events = await h.egressSince(mark, 1);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ outcome: 'blocked' });
    });
    it(`CONNECT to ${name} ${host}: 403 then closed`, async () => {
      const r = await h.raw(`CONNECT ${host}:${h.echo.httpsPort} HTTP/1.1\r\nHost: ${host}:${h.echo.httpsPort}\r\n\r\n`);
      expect(statusOf(r)).toBe(403);
    });
  }

  it('encodings are canonicalised before matching: the audit names 127.0.0.1', async () => {
    const mark = await h.mark();
    await h.raw(get(`http://0x7f.1:${h.echo.httpPort}/x`, `0x7f.1:${h.echo.httpPort}`));
    const [event] = await h.egressSince(mark, 1);
    expect(event).toMatchObject({ outcome: 'blocked', host: '127.0.0.1' });
    await h.expectServing();
  });
});

describe('private, link-local, CGNAT and metadata ranges', () => {
  for (const host of ['169.254.169.254', '[fd00:ec2::254]', '10.0.0.1', '172.16.0.1', '192.168.1.1', '100.64.0.1', '[fe80::1]', '[fc00::1]', '224.0.0.1', 'metadata.google.internal']) {
    it(`${host}: 403 blocked`, async () => {
      const r = await h.raw(get(`http://${host}/latest/meta-data/`, host));
      expect(statusOf(r)).toBe(403);
    });
  }
  it('still serving', async () => h.expectServing());
});

describe('names that resolve to loopback (the SSRF guard itself)', () => {
  it('a bundle allowing the name localhost is still refused: 403, reason names the forbidden address', async () => {
    h.listener.setPolicy(policyOf(`bundles:\n  - name: loop\n    domains:\n      - echo.test\n      - host: localhost\n        ports: [${h.echo.httpPort}]\n`));
    try {
      const before = h.echo.received.length;
      const mark = await h.mark();
      const r = await h.curl(`http://localhost:${h.echo.httpPort}/ssrf`);
      expect(r.status).toBe(403);
      expect(r.body).toMatch(/localhost resolves to a forbidden address/);
      expect(r.body).toMatch(/127\.0\.0\.1|::1/);
      expect(h.receivedSince(before)).toHaveLength(0);
      const [event] = await h.egressSince(mark, 1);
      expect(event).toMatchObject({ outcome: 'blocked', host: 'localhost', port: h.echo.httpPort, status: 403 });
      expect(event!.reason).toMatch(/forbidden address.*(127\.0\.0\.1|::1)/);
      await h.expectServing();
    } finally {
      h.listener.setPolicy(policyOf(DEFAULT_BUNDLES));
    }
  });

  it('an explicit IP entry 127.0.0.1 in domains makes that address reachable', async () => {
    h.listener.setPolicy(policyOf(`bundles:\n  - name: loop\n    domains:\n      - echo.test\n      - host: 127.0.0.1\n        ports: [${h.echo.httpPort}]\n`));
    try {
      const before = h.echo.received.length;
      const r = await h.curl(`http://127.0.0.1:${h.echo.httpPort}/explicit`);
      expect(r.status).toBe(200);
      expect(h.receivedSince(before).map((x) => x.path)).toEqual(['/explicit']);
      // The same entry does not open the rest of loopback, nor another port.
      expect(statusOf(await h.raw(get(`http://127.0.0.2:${h.echo.httpPort}/x`, `127.0.0.2:${h.echo.httpPort}`)))).toBe(403);
      expect(statusOf(await h.raw(get(`http://127.0.0.1:1/x`, `127.0.0.1:1`)))).toBe(403);
    } finally {
      h.listener.setPolicy(policyOf(DEFAULT_BUNDLES));
    }
  });

  it('a CIDR 127.0.0.0/8 does not unlock the proxy\'s own address; exact entries let the name localhost through', async () => {
    h.listener.setPolicy(policyOf(`bundles:\n  - name: loop\n    domains:\n      - echo.test\n      - 127.0.0.0/8\n      - host: localhost\n        ports: [${h.echo.httpPort}]\n`));
    try {
      const r = await h.curl(`http://localhost:${h.echo.httpPort}/cidr`);
      expect(r.status).toBe(403);
      expect(r.body).toMatch(/proxy's own address/);
      h.listener.setPolicy(policyOf(`bundles:\n  - name: loop\n    domains:\n      - echo.test\n      - 127.0.0.1\n      - ::1\n      - host: localhost\n        ports: [${h.echo.httpPort}]\n`));
      const ok = await h.curl(`http://localhost:${h.echo.httpPort}/exact`);
      expect(ok.status).toBe(200);
    } finally {
      h.listener.setPolicy(policyOf(DEFAULT_BUNDLES));
    }
  });
});

describe('loopback is unlocked only by an exact entry', () => {
  // 127.0.0.2 reaches every service bound to all interfaces of the proxy's
  // host; an admin's 127.0.0.0/8 must not open it. A local service on
  // 127.0.0.2 stands in for such a service.
  let local: Server;
  let hits: string[];
  let port: number;
  beforeAll(async () => {
    hits = [];
    local = createServer((req, res) => {
      hits.push(req.url ?? '');
      res.end('local service\n');
    });
    await new Promise<void>((r) => local.listen(0, '127.0.0.2', () => r()));
    port = (local.address() as AddressInfo).port;
  });
  afterAll(async () => {
    local.closeAllConnections();
    await new Promise<void>((r) => local.close(() => r()));
  });

  it('a bundle with 127.0.0.0/8 cannot reach 127.0.0.2 (nor its IPv4-mapped or NAT64 forms); the proxy keeps serving', async () => {
    h.listener.setPolicy(policyOf(`bundles:\n  - name: loop\n    domains:\n      - echo.test\n      - host: 127.0.0.0/8\n        ports: [${port}]\n      - host: "::/0"\n        ports: [${port}]\n`));
    try {
      const mark = await h.mark();
      for (const host of ['127.0.0.2', '[::ffff:127.0.0.2]', '0x7f000002', '[64:ff9b::7f00:2]']) {
        const r = await h.raw(get(`http://${host}:${port}/cidr`, `${host}:${port}`));
        expect(statusOf(r), host).toBe(403);
        expect(r).toMatch(/127\.0\.0\.2 (is|via NAT64 .*which is) loopback .*only an exact IP entry allows it/);
      }
      expect(hits).toEqual([]);
      const events = await h.egressSince(mark, 4);
      expect(events.map((e) => [e.outcome, e.status])).toEqual(Array(4).fill(['blocked', 403]));
      await h.expectServing();
    } finally {
      h.listener.setPolicy(policyOf(DEFAULT_BUNDLES));
    }
  });

  it('the exact entry 127.0.0.2 reaches it (the admin named that address)', async () => {
    h.listener.setPolicy(policyOf(`bundles:\n  - name: loop\n    domains:\n      - echo.test\n      - host: 127.0.0.2\n        ports: [${port}]\n`));
    try {
      const r = await h.raw(get(`http://127.0.0.2:${port}/exact`, `127.0.0.2:${port}`));
      expect(statusOf(r)).toBe(200);
      expect(hits).toEqual(['/exact']);
    } finally {
      h.listener.setPolicy(policyOf(DEFAULT_BUNDLES));
    }
  });
});

describe('wildcard confusion', () => {
  // The default bundle allows example.com and *.example.com.
  for (const host of ['evil-example.com', 'example.com.evil.test', 'evilexample.com', 'example.com.', 'xexample.com', 'example.co', 'example.com%2eevil.test']) {
    it(`${host}`, async () => {
      const before = h.echo.received.length;
      const r = await h.raw(`CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\n\r\n`, { timeoutMs: 800 });
      if (host === 'example.com.') {
        // A trailing dot is the same host: allowed (and then fails to resolve, which is fine).
        expect(statusOf(r)).toBe(200);
        // (the proxy then waits for the client's TLS hello; the raw client just hangs up)
      } else {
        expect([400, 403, 421], host).toContain(statusOf(r));
      }
      expect(h.receivedSince(before)).toHaveLength(0);
    });
  }
  it('still serving', async () => h.expectServing());
});
