import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawExchange, startHarness, statusOf, tlsThroughConnect, type Harness } from './harness.js';

/**
 * Authority checks: CONNECT target, SNI and Host must agree (421); one Host
 * only (400); an absolute-form URI must agree with Host; a request inside a
 * tunnel cannot name another host. Each attack must fail, reach nothing, and
 * leave the proxy serving.
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => h?.close());

const request = (host: string, path = '/x', extra = '') => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}Connection: close\r\n\r\n`;

describe('SNI, Host and CONNECT target must agree', () => {
  it('an allowed request through an intercepted tunnel works (control)', async () => {
    const r = await tlsThroughConnect({ port: h.port }, { target: 'echo.test:443', servername: 'echo.test', ca: h.deployCa.certPem, request: request('echo.test') });
    expect(r.connectStatus).toBe(200);
    expect(statusOf(r.response)).toBe(200);
    expect(r.peer?.issuer.CN).toBe('Tagbox Test Deployment CA');
  });

  it('SNI naming another host than the CONNECT target: 421, nothing sent', async () => {
    const before = h.echo.received.length;
    const r = await tlsThroughConnect({ port: h.port }, { target: 'echo.test:443', servername: 'evil.test', ca: h.deployCa.certPem, request: request('echo.test') });
    expect(statusOf(r.response)).toBe(421);
    expect(r.response.toLowerCase()).toContain('x-tagbox-decision: blocked');
    expect(h.receivedSince(before)).toHaveLength(0);
    await h.expectServing();
  });

  it('Host naming another host than the CONNECT target: 421, nothing sent', async () => {
    const before = h.echo.received.length;
    const r = await tlsThroughConnect({ port: h.port }, { target: 'echo.test:443', servername: 'echo.test', ca: h.deployCa.certPem, request: request('evil.test') });
    expect(statusOf(r.response)).toBe(421);
    expect(h.receivedSince(before)).toHaveLength(0);
    await h.expectServing();
  });

  it('Host naming another port than the CONNECT target: 421', async () => {
    const r = await tlsThroughConnect({ port: h.port }, { target: 'echo.test:443', servername: 'echo.test', ca: h.deployCa.certPem, request: request('echo.test:8443') });
    expect(statusOf(r.response)).toBe(421);
    await h.expectServing();
  });

  it('a credential host in SNI inside a tunnel to an allowlisted host gets no credential', async () => {
    const before = h.echo.received.length;
    const r = await tlsThroughConnect({ port: h.port }, { target: 'echo.test:443', servername: 'api.echo.test', ca: h.deployCa.certPem, request: request('api.echo.test', '/repos/acme/x') });
    expect(statusOf(r.response)).toBe(421);
    expect(h.receivedSince(before)).toHaveLength(0);
  });

  it('CONNECT whose Host header disagrees with its target: 421, then closed', async () => {
    const r = await rawExchange({ port: h.port }, 'CONNECT echo.test:443 HTTP/1.1\r\nHost: evil.test:443\r\n\r\n');
    expect(statusOf(r)).toBe(421);
    await h.expectServing();
  });

  it('the leaf is the CONNECT host, whatever the SNI asks for; and no SNI at all still gets checked Host', async () => {
    const r = await tlsThroughConnect({ port: h.port }, { target: 'echo.test:443', servername: '', ca: h.deployCa.certPem, request: request('evil.test') });
    // No SNI: Host is still compared with the CONNECT target.
    expect(statusOf(r.response)).toBe(421);
  });
});

describe('one Host header only', () => {
  it('two Host headers in plain HTTP: 400, nothing sent', async () => {
    const before = h.echo.received.length;
    const r = await h.raw('GET http://echo.test/x HTTP/1.1\r\nHost: echo.test\r\nHost: evil.test\r\nConnection: close\r\n\r\n');
    expect(statusOf(r)).toBe(400);
    expect(h.receivedSince(before)).toHaveLength(0);
    await h.expectServing();
  });

  it('two Host headers inside a tunnel (same value, different case): 400', async () => {
    const before = h.echo.received.length;
    const r = await tlsThroughConnect(
      { port: h.port },
      { target: 'echo.test:443', servername: 'echo.test', ca: h.deployCa.certPem, request: 'GET /x HTTP/1.1\r\nHost: echo.test\r\nhost: echo.test\r\nConnection: close\r\n\r\n' },
    );
    expect(statusOf(r.response)).toBe(400);
    expect(h.receivedSince(before)).toHaveLength(0);
    await h.expectServing();
  });

  it('two Host headers on CONNECT: 400, then closed', async () => {
    const r = await h.raw('CONNECT echo.test:443 HTTP/1.1\r\nHost: echo.test:443\r\nHost: evil.test:443\r\n\r\n');
    expect(statusOf(r)).toBe(400);
    await h.expectServing();
  });
});

describe('absolute-form tricks', () => {
  it('absolute URI naming an allowed host with a Host header naming another: 421', async () => {
    const before = h.echo.received.length;
    const r = await h.raw('GET http://echo.test/x HTTP/1.1\r\nHost: evil.test\r\nConnection: close\r\n\r\n');
    expect(statusOf(r)).toBe(421);
    expect(h.receivedSince(before)).toHaveLength(0);
    await h.expectServing();
  });

  it('absolute URI naming a blocked host with Host naming an allowed one: 421, never forwarded', async () => {
    const before = h.echo.received.length;
    const r = await h.raw('GET http://evil.test/x HTTP/1.1\r\nHost: echo.test\r\nConnection: close\r\n\r\n');
    expect([403, 421]).toContain(statusOf(r));
    expect(h.receivedSince(before)).toHaveLength(0);
  });

  it('user-info in the URI (http://echo.test@evil.test/): refused, nothing sent to either', async () => {
    const before = h.echo.received.length;
    for (const uri of ['http://echo.test@evil.test/x', 'http://echo.test:80@evil.test/x', 'http://evil.test@echo.test/x']) {
      const r = await h.raw(`GET ${uri} HTTP/1.1\r\nConnection: close\r\n\r\n`);
      expect(statusOf(r), uri).toBe(400);
    }
    expect(h.receivedSince(before)).toHaveLength(0);
    await h.expectServing();
  });

  it('origin-form to the proxy itself (no absolute URI): 400', async () => {
    const r = await h.raw('GET /x HTTP/1.1\r\nHost: echo.test\r\nConnection: close\r\n\r\n');
    expect(statusOf(r)).toBe(400);
  });

  it('absolute URI inside a tunnel naming another host: 421, nothing sent', async () => {
    const before = h.echo.received.length;
    const r = await tlsThroughConnect(
      { port: h.port },
      { target: 'echo.test:443', servername: 'echo.test', ca: h.deployCa.certPem, request: 'GET https://api.echo.test/repos/acme/x HTTP/1.1\r\nHost: echo.test\r\nConnection: close\r\n\r\n' },
    );
    expect(statusOf(r.response)).toBe(421);
    expect(h.receivedSince(before)).toHaveLength(0);
    await h.expectServing();
  });

  it('absolute URI inside a tunnel naming the tunnel host is accepted', async () => {
    const r = await tlsThroughConnect(
      { port: h.port },
      { target: 'echo.test:443', servername: 'echo.test', ca: h.deployCa.certPem, request: 'GET https://echo.test/abs HTTP/1.1\r\nHost: echo.test\r\nConnection: close\r\n\r\n' },
    );
    expect(statusOf(r.response)).toBe(200);
    expect(r.response).toContain('"path":"/abs"');
  });
});

describe('blocked CONNECT', () => {
  it('answers 403 with X-Tagbox-Decision and closes the connection', async () => {
    const started = Date.now();
    const r = await rawExchange({ port: h.port }, 'CONNECT evil.test:443 HTTP/1.1\r\nHost: evil.test:443\r\n\r\n', 5000);
    expect(statusOf(r)).toBe(403);
    expect(r.toLowerCase()).toContain('x-tagbox-decision: blocked');
    expect(r).toContain('evil.test');
    // Closed by the proxy, not by our timeout.
    expect(Date.now() - started).toBeLessThan(4000);
    await h.expectServing();
  });

  it('curl sees the CONNECT refused', async () => {
    const r = await h.curl('https://evil.test/');
    expect(r.connectStatus).toBe(403);
    expect(r.code).not.toBe(0);
    await h.expectServing();
  });
});
