import { randomBytes } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep, startHarness, statusOf, tlsThroughConnect, type Harness } from './harness.js';

/**
 * Header hygiene and malformed input: Proxy-* and Connection-named headers are
 * stripped; smuggling shapes are refused with 400 before anything reaches the
 * upstream; oversized headers get 431; garbage is refused; a flood of
 * half-open connections neither starves the proxy nor lingers past the
 * headers timeout; the tunnel cap answers 503.
 */
let h: Harness;
beforeAll(async () => {
  // Connection caps high enough for one client's 300 stalled requests: this file is about timeouts (caps: limits.test.ts).
  h = await startHarness({ limits: { headersTimeoutMs: 1000, maxTunnels: 50, maxConnections: 2000, maxConnectionsPerSession: 400 } });
});
afterAll(async () => h?.close());

describe('hop-by-hop and Proxy-* headers', () => {
  it('are stripped before the upstream, over plain HTTP and inside a tunnel', async () => {
    const headers =
      'Proxy-Authorization: Basic dXNlcjpwYXNz\r\nProxy-Foo: bar\r\nProxy-Connection: keep-alive\r\nConnection: X-Hop-Secret, close\r\nX-Hop-Secret: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nX-Kept: yes\r\n';
    const before = h.echo.received.length;
    const plain = await h.raw(`GET http://echo.test/h HTTP/1.1\r\nHost: echo.test\r\n${headers}\r\n`);
    expect(statusOf(plain)).toBe(200);
    const tunnelled = await tlsThroughConnect({ port: h.port }, { target: 'echo.test:443', servername: 'echo.test', ca: h.deployCa.certPem, request: `GET /h HTTP/1.1\r\nHost: echo.test\r\n${headers}\r\n` });
    expect(statusOf(tunnelled.response)).toBe(200);
    const got = h.receivedSince(before);
    expect(got).toHaveLength(2);
    for (const reply of got) {
      const names = reply.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
      expect(names).toContain('x-kept');
      for (const banned of ['proxy-authorization', 'proxy-foo', 'proxy-connection', 'x-hop-secret', 'keep-alive', 'te']) expect(names).not.toContain(banned);
    }
  });

  it('Proxy-Authorization on CONNECT is not carried into the tunnel', async () => {
    const before = h.echo.received.length;
    const r = await tlsThroughConnect(
      { port: h.port },
      { target: 'echo.test:443', servername: 'echo.test', ca: h.deployCa.certPem, connectHeaders: 'Proxy-Authorization: Basic c2VjcmV0\r\n', request: 'GET /c HTTP/1.1\r\nHost: echo.test\r\nConnection: close\r\n\r\n' },
    );
    expect(statusOf(r.response)).toBe(200);
    expect(JSON.stringify(h.receivedSince(before))).not.toContain('c2VjcmV0');
  });
});

describe('request smuggling shapes: 400 and nothing reaches the upstream', () => {
  const shapes: Array<[string, string]> = [
    ['CL + TE', 'Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET http://echo.test/smuggled HTTP/1.1\r\nHost: echo.test\r\n\r\n'],
    ['TE: chunked, identity', 'Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n'],
    ['TE with space before colon', 'Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n'],
    ['TE obs-fold', 'Transfer-Encoding: identity\r\n chunked\r\n\r\n0\r\n\r\n'],
    ['obs-fold on any header', 'X-Folded: a\r\n  b\r\nContent-Length: 0\r\n\r\n'],
    ['two different Content-Length', 'Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!'],
    ['Content-Length list', 'Content-Length: 5, 6\r\n\r\nhello!'],
    ['TE: xchunked', 'Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n'],
    ['TE twice', 'Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n'],
    ['bare LF line endings with CL+TE', 'Content-Length: 4\nTransfer-Encoding: chunked\n\n0\n\n'],
  ];
  for (const [name, rest] of shapes) {
    it(`${name} (plain HTTP)`, async () => {
      const before = h.echo.received.length;
      const r = await h.raw(`POST http://echo.test/s HTTP/1.1\r\nHost: echo.test\r\n${rest}`);
      expect(statusOf(r)).toBe(400);
      await sleep(50);
      expect(h.receivedSince(before)).toHaveLength(0);
    });
  }

  it('CL + TE inside an intercepted tunnel', async () => {
    const before = h.echo.received.length;
    const r = await tlsThroughConnect(
      { port: h.port },
      { target: 'echo.test:443', servername: 'echo.test', ca: h.deployCa.certPem, request: `POST /s HTTP/1.1\r\nHost: echo.test\r\n${shapes[0]![1]}` },
    );
    expect(statusOf(r.response)).toBe(400);
    await sleep(50);
    expect(h.receivedSince(before)).toHaveLength(0);
    await h.expectServing();
  });
});

describe('oversized and garbage input', () => {
  it('oversized headers: 431, nothing sent', async () => {
    const before = h.echo.received.length;
    const r = await h.raw(`GET http://echo.test/big HTTP/1.1\r\nHost: echo.test\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\nConnection: close\r\n\r\n`);
    expect(statusOf(r)).toBe(431);
    expect(h.receivedSince(before)).toHaveLength(0);
    await h.expectServing();
  });

  it('many headers totalling over the limit inside a tunnel: 431', async () => {
    const many = Array.from({ length: 2000 }, (_, i) => `X-H${i}: ${'b'.repeat(20)}\r\n`).join('');
    const r = await tlsThroughConnect({ port: h.port }, { target: 'echo.test:443', servername: 'echo.test', ca: h.deployCa.certPem, request: `GET /big HTTP/1.1\r\nHost: echo.test\r\n${many}\r\n` });
    expect(statusOf(r.response)).toBe(431);
  });

  it('random bytes: refused, connection closed', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await h.raw(randomBytes(512), { timeoutMs: 2000 });
      expect([0, 400]).toContain(statusOf(r));
    }
    const r = await h.raw('\x00\x01\x02 GARBAGE\r\n\r\n');
    expect(statusOf(r)).toBe(400);
    await h.expectServing();
  });

  it('garbage after CONNECT (neither TLS nor HTTP): closed, nothing sent', async () => {
    const before = h.echo.received.length;
    const r = await h.raw(Buffer.concat([Buffer.from('CONNECT echo.test:443 HTTP/1.1\r\nHost: echo.test:443\r\n\r\n'), randomBytes(300)]));
    expect(statusOf(r)).toBe(200);
    expect(h.receivedSince(before)).toHaveLength(0);
    await h.expectServing();
  });

  it('a TLS ClientHello-looking first byte followed by junk: closed', async () => {
    const r = await h.raw(Buffer.concat([Buffer.from('CONNECT echo.test:443 HTTP/1.1\r\nHost: echo.test:443\r\n\r\n'), Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff]), randomBytes(200)]));
    expect(statusOf(r)).toBe(200);
    await h.expectServing();
  });

  it('CONNECT without a port, or to a path: 400', async () => {
    for (const target of ['echo.test', '/etc/passwd', 'echo.test:0', 'echo.test:99999', 'user@echo.test:443']) {
      const r = await h.raw(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
      expect([400, 403], target).toContain(statusOf(r));
    }
    await h.expectServing();
  });
});

describe('a flood of half-open connections', () => {
  it('300 stalled partial requests: the proxy still answers, and cuts them after the headers timeout', async () => {
    const sockets: Socket[] = [];
    const closedAt: number[] = [];
    const started = Date.now();
    await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        new Promise<void>((resolve) => {
          const s = netConnect({ host: '127.0.0.1', port: h.port }, () => {
            s.write(i % 2 ? 'GET http://echo.test/ HTT' : 'CONNECT echo.test:443 HTTP/1.1\r\nHost: ech');
            resolve();
          });
          s.on('data', () => undefined);
          s.on('error', () => resolve());
          s.on('close', () => closedAt.push(Date.now() - started));
          sockets.push(s);
        }),
      ),
    );
    // Still serving while they stall.
    const t0 = Date.now();
    await h.expectServing();
    expect(Date.now() - t0).toBeLessThan(2000);
    // headersTimeoutMs is 1000: all of them are cut well within a few seconds.
    const deadline = Date.now() + 6000;
    while (closedAt.length < sockets.length && Date.now() < deadline) await sleep(100);
    const open = sockets.filter((s) => !s.destroyed).length;
    for (const s of sockets) s.destroy();
    expect(open).toBe(0);
    expect(Math.max(...closedAt)).toBeLessThan(6000);
    await h.expectServing();
  });
});

describe('the tunnel cap', () => {
  it('over the per-session tunnel cap: 503, then closed; the cap frees up when tunnels close', async () => {
    const capped = await startHarness({ limits: { maxTunnels: 8, maxTunnelsPerSession: 2 } });
    try {
      const open: Socket[] = [];
      for (let i = 0; i < 2; i++) {
        const s = netConnect({ host: '127.0.0.1', port: capped.port });
        const answer = await new Promise<string>((resolve) => {
          s.once('data', (d: Buffer) => resolve(d.toString('latin1')));
          s.write('CONNECT echo.test:443 HTTP/1.1\r\nHost: echo.test:443\r\n\r\n');
        });
        expect(statusOf(answer)).toBe(200);
        open.push(s);
      }
      const mark = await capped.mark();
      const r = await capped.raw('CONNECT echo.test:443 HTTP/1.1\r\nHost: echo.test:443\r\n\r\n');
      expect(statusOf(r)).toBe(503);
      expect(r.toLowerCase()).toContain('x-tagbox-decision: blocked');
      expect(r).toContain('too many open tunnels for this session (2)');
      const [event] = await capped.egressSince(mark, 1);
      expect(event).toMatchObject({ outcome: 'blocked', status: 503, method: 'CONNECT' });
      for (const s of open) s.destroy();
      await sleep(100);
      await capped.expectServing();
    } finally {
      await capped.close();
    }
  });
});
