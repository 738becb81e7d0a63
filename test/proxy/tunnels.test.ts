import { connect as netConnect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep, startHarness, startUntrustedUpstream, startWsUpstream, statusOf, tlsThroughConnect, type Harness } from './harness.js';

/**
 * Passthrough tunnels, WebSocket upgrades, and upstream TLS verification.
 */
let h: Harness;
let ws: Awaited<ReturnType<typeof startWsUpstream>>;
let rogue: Awaited<ReturnType<typeof startUntrustedUpstream>>;

const BUNDLES = `
bundles:
  - name: t
    domains: [echo.test, pass.echo.test, ws.echo.test, bad.echo.test, unnamed.test]
    connections:
      - name: ws-api
        secret: echo-token
        allowedWebsites: [wsapi.echo.test]
        inject:
          header: Authorization
          value: "Bearer {{secret}}"
        # The WebSocket upstream below speaks plain ws:// on loopback.
        plainHttp: true
      - name: ws-tls-only
        secret: echo-token
        allowedWebsites: [wstls.echo.test]
        inject:
          header: Authorization
          value: "Bearer {{secret}}"
`;

beforeAll(async () => {
  ws = await startWsUpstream();
  rogue = await startUntrustedUpstream(['bad.echo.test']);
  h = await startHarness({
    bundles: BUNDLES,
    passthrough: ['pass.echo.test', 'nopass.echo.test'],
    connectTo: [`ws.echo.test:80:127.0.0.1:${ws.port}`, `wsapi.echo.test:80:127.0.0.1:${ws.port}`, `wstls.echo.test:80:127.0.0.1:${ws.port}`, `ws.evil.test:80:127.0.0.1:${ws.port}`, `bad.echo.test:443:127.0.0.1:${rogue.port}`],
  });
});
afterAll(async () => {
  await h?.close();
  await ws?.close();
  await rogue?.close();
});

describe('passthrough', () => {
  it('an allowed passthrough host is tunnelled unopened: the client sees the upstream certificate', async () => {
    const mark = await h.mark();
    const r = await tlsThroughConnect({ port: h.port }, { target: 'pass.echo.test:443', servername: 'pass.echo.test', ca: h.upstreamCa.certPem, request: 'GET /p HTTP/1.1\r\nHost: pass.echo.test\r\nConnection: close\r\n\r\n' });
    expect(r.connectStatus).toBe(200);
    expect(r.tlsError).toBeUndefined();
    expect(r.peer?.issuer.CN).toBe('Tagbox Test Upstream CA');
    expect(statusOf(r.response)).toBe(200);
    // The proxy saw no request inside it: one tunnel event, no path.
    const events = await h.egressSince(mark, 1);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ outcome: 'allowlist', method: 'CONNECT', host: 'pass.echo.test', port: 443, status: 200 });
  });

  it('curl trusting only the deployment CA cannot verify a passthrough host (it is not intercepted)', async () => {
    const r = await h.curl('https://pass.echo.test/p');
    expect(r.connectStatus).toBe(200);
    expect(r.code).toBe(60);
  });

  it('a passthrough host that no bundle allows: 403 then closed', async () => {
    const before = h.echo.received.length;
    const r = await tlsThroughConnect({ port: h.port }, { target: 'nopass.echo.test:443', servername: 'nopass.echo.test', ca: h.upstreamCa.certPem, request: 'GET / HTTP/1.1\r\nHost: nopass.echo.test\r\n\r\n' });
    expect(r.connectStatus).toBe(403);
    expect(r.connectResponse.toLowerCase()).toContain('x-tagbox-decision: blocked');
    expect(h.receivedSince(before)).toHaveLength(0);
    await h.expectServing();
  });
});

function upgrade(uri: string, host: string, extra = ''): Promise<string> {
  return new Promise((resolve) => {
    const s = netConnect({ host: '127.0.0.1', port: h.port });
    const chunks: Buffer[] = [];
    let sentPing = false;
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      const text = Buffer.concat(chunks).toString('latin1');
      if (!sentPing && text.startsWith('HTTP/1.1 101') && text.includes('\r\n\r\n')) {
        sentPing = true;
        s.write('ping-frame');
      }
      if (text.includes('echo:ping-frame')) s.end();
    });
    const done = () => resolve(Buffer.concat(chunks).toString('latin1'));
    s.on('close', done);
    s.on('error', done);
    setTimeout(() => s.destroy(), 3000);
    s.write(`GET ${uri} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`);
  });
}

describe('WebSocket upgrades are decided like any request', () => {
  it('to an allowed host: 101 and bytes flow both ways', async () => {
    const mark = await h.mark();
    const r = await upgrade('http://ws.echo.test/chat', 'ws.echo.test');
    expect(statusOf(r)).toBe(101);
    expect(r).toContain('echo:ping-frame');
    const [event] = await h.egressSince(mark, 1);
    expect(event).toMatchObject({ outcome: 'allowlist', host: 'ws.echo.test', path: '/chat', status: 101 });
  });

  it('to a credential host: the credential is injected into the handshake, replacing the client value', async () => {
    const n = ws.upgrades.length;
    const r = await upgrade('http://wsapi.echo.test/chat', 'wsapi.echo.test', 'Authorization: Bearer mine\r\n');
    expect(statusOf(r)).toBe(101);
    expect(ws.upgrades.slice(n)).toEqual([`GET /chat auth=Bearer ${h.secret}`]);
  });

  it('to a credential host over plain ws:// without plainHttp: 403, the upstream never sees the handshake', async () => {
    const n = ws.upgrades.length;
    const r = await upgrade('http://wstls.echo.test/chat', 'wstls.echo.test');
    expect(statusOf(r)).toBe(403);
    expect(r).toContain('use https://wstls.echo.test/');
    expect(ws.upgrades.length).toBe(n);
  });

  it('to a blocked host: 403, the upstream never sees it', async () => {
    const n = ws.upgrades.length;
    const r = await upgrade('http://ws.evil.test/chat', 'ws.evil.test');
    expect(statusOf(r)).toBe(403);
    expect(r.toLowerCase()).toContain('x-tagbox-decision: blocked');
    expect(ws.upgrades.length).toBe(n);
    await h.expectServing();
  });

  it('an upgrade whose Host disagrees with its URI: 421', async () => {
    const n = ws.upgrades.length;
    const r = await upgrade('http://ws.echo.test/chat', 'ws.evil.test');
    expect(statusOf(r)).toBe(421);
    expect(ws.upgrades.length).toBe(n);
  });
});

describe('upstream TLS is verified', () => {
  it('an upstream whose certificate is from an untrusted CA: 502 with a reason, nothing served', async () => {
    const mark = await h.mark();
    const r = await h.curl('https://bad.echo.test/x');
    expect(r.status).toBe(502);
    expect(r.body).toMatch(/upstream TLS for bad\.echo\.test could not be verified/);
    expect(rogue.hits).toHaveLength(0);
    const [event] = await h.egressSince(mark, 1);
    expect(event).toMatchObject({ host: 'bad.echo.test', status: 502 });
    expect(event!.reason).toMatch(/could not be verified/);
    await sleep(10);
    await h.expectServing();
  });

  it('a trusted certificate that does not name the host: 502, nothing served', async () => {
    const before = h.echo.received.length;
    const r = await h.curl('https://unnamed.test/x');
    expect(r.status).toBe(502);
    expect(r.body).toMatch(/could not be verified/);
    expect(h.receivedSince(before)).toHaveLength(0);
  });
});
