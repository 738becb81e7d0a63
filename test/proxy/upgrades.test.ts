import { createServer as createNetServer, connect as netConnect, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestCa } from '../fixtures/ca.js';
import type { EchoReply } from '../fixtures/echo-upstream.js';
import { sleep, startHarness, tlsThroughConnect, type Harness } from './harness.js';

/**
 * After an Upgrade request the proxy must not turn the connection into a raw
 * pipe unless the upstream answered 101 to exactly that handshake. The attack:
 * send a WebSocket handshake the upstream declines (or answers slowly) and
 * pipeline more requests behind it on the same connection — one naming
 * another host (domain fronting), one that would get no credential. Before
 * the fix they went to the upstream as raw bytes, undecided and unaudited.
 */

/** A raw TCP (or TLS) upstream that records exactly what arrives on each connection, and when. */
interface RawUpstream {
  port: number;
  /** TLS only: serve this certificate from now on. */
  setCertificate(leaf: { certPem: string; keyPem: string }): void;
  connections: Array<{ handshake: string; beforeAnswer: string; afterAnswer: string }>;
  close(): Promise<void>;
}

async function startRawUpstream(mode: '101' | 'declined', delayMs: number, tls?: { certPem: string; keyPem: string }): Promise<RawUpstream> {
  const connections: RawUpstream['connections'] = [];
  const onSocket = (socket: Socket) => {
    const rec = { handshake: '', beforeAnswer: '', afterAnswer: '' };
    connections.push(rec);
    let buf = '';
    let answered = false;
    socket.on('error', () => socket.destroy());
    socket.on('data', (d: Buffer) => {
      const text = d.toString('latin1');
      if (answered) {
        rec.afterAnswer += text;
        // One frame each way, then the upstream hangs up (so clients see the stream end).
        if (mode === '101') socket.end(`echo:${text}`);
        return;
      }
      if (!rec.handshake) {
        buf += text;
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) return;
        rec.handshake = buf.slice(0, end + 4);
        rec.beforeAnswer += buf.slice(end + 4);
        setTimeout(() => {
          answered = true;
          if (mode === '101') socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n');
          else socket.write('HTTP/1.1 426 Upgrade Required\r\nContent-Length: 8\r\nConnection: keep-alive\r\n\r\ndeclined');
        }, delayMs);
        return;
      }
      rec.beforeAnswer += text;
    });
  };
  const tlsServer = tls ? createTlsServer({ cert: tls.certPem, key: tls.keyPem }, onSocket) : undefined;
  const server: Server = tlsServer ? (tlsServer as unknown as Server) : createNetServer(onSocket);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    setCertificate: (leaf) => tlsServer?.setSecureContext({ cert: leaf.certPem, key: leaf.keyPem }),
    connections,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

const BUNDLES = `
bundles:
  - name: base
    domains: [echo.test, other.echo.test, slow.echo.test, fast.echo.test]
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
      - name: wss
        secret: echo-token
        allowedWebsites: [wss.echo.test]
        inject:
          header: Authorization
          value: "Bearer {{secret}}"
`;

let h: Harness;
let declining: RawUpstream;
let switching: RawUpstream;
let switchingTls: RawUpstream;

beforeAll(async () => {
  declining = await startRawUpstream('declined', 300);
  switching = await startRawUpstream('101', 300);
  // A placeholder certificate until the harness's upstream CA exists.
  switchingTls = await startRawUpstream('101', 100, await (await createTestCa('placeholder')).issue(['wss.echo.test']));
  h = await startHarness({
    bundles: BUNDLES,
    connectTo: [`slow.echo.test:80:127.0.0.1:${declining.port}`, `fast.echo.test:80:127.0.0.1:${switching.port}`, `wss.echo.test:443:127.0.0.1:${switchingTls.port}`],
  });
  switchingTls.setCertificate(await h.upstreamCa.issue(['wss.echo.test']));
});
afterAll(async () => {
  await h?.close();
  await declining?.close();
  await switching?.close();
  await switchingTls?.close();
});

const handshake = (uri: string, host: string, extra = '') =>
  `GET ${uri} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;

/** Writes `first`, then `rest` at once (before any answer can come), and reads until close. */
function pipelined(first: string, rest: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve) => {
    const s = netConnect({ host: '127.0.0.1', port: h.port });
    const chunks: Buffer[] = [];
    const done = () => resolve(Buffer.concat(chunks).toString('latin1'));
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('close', done);
    s.on('error', done);
    setTimeout(() => s.destroy(), timeoutMs);
    s.write(first);
    s.write(rest);
  });
}

const statuses = (raw: string) => [...raw.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
const authOf = (r: EchoReply) => r.rawHeaders.filter((_, i) => i % 2 === 1 && r.rawHeaders[i - 1]!.toLowerCase() === 'authorization');

describe('a declined upgrade never becomes a raw tunnel', () => {
  it('plain HTTP: the requests pipelined behind it are parsed, decided and audited one by one; the upstream never sees them', async () => {
    const mark = await h.mark();
    const before = h.echo.received.length;
    const raw = await pipelined(
      handshake('http://slow.echo.test/chat', 'slow.echo.test'),
      'GET http://evil.test/fronted HTTP/1.1\r\nHost: evil.test\r\n\r\n' +
        'GET http://echo.test/next HTTP/1.1\r\nHost: echo.test\r\n\r\n' +
        'GET /fronted HTTP/1.1\r\nHost: evil.test\r\n\r\n',
    );
    // The upstream's 426, then one answer per request: blocked, allowed, malformed.
    expect(statuses(raw)).toEqual([426, 403, 200, 400]);
    expect(raw).toContain('declined');
    const conn = declining.connections.at(-1)!;
    expect(conn.handshake).toMatch(/^GET \/chat HTTP\/1\.1\r\n/);
    expect(conn.beforeAnswer + conn.afterAnswer).toBe('');
    expect(h.receivedSince(before).map((r) => r.path)).toEqual(['/next']);
    // Pipelined requests are decided as they arrive and recorded as they end: compare as a set.
    const events = await h.egressSince(mark, 4);
    expect(events.map((e) => [e.outcome, e.host, e.status]).sort()).toEqual([
      ['allowlist', 'echo.test', 200],
      ['allowlist', 'slow.echo.test', 426],
      ['blocked', 'evil.test', 400],
      ['blocked', 'evil.test', 403],
    ]);
    await h.expectServing();
  });

  it('inside an intercepted tunnel: an upgrade the upstream answers normally is followed by parsed requests (another host: 421)', async () => {
    const mark = await h.mark();
    const before = h.echo.received.length;
    const r = await tlsThroughConnect(
      { port: h.port },
      {
        target: 'echo.test:443',
        servername: 'echo.test',
        ca: h.deployCa.certPem,
        request: handshake('/chat', 'echo.test') + 'GET /second HTTP/1.1\r\nHost: echo.test\r\n\r\n' + 'GET /fronted HTTP/1.1\r\nHost: evil.test\r\n\r\n',
      },
    );
    expect(statuses(r.response)).toEqual([200, 200, 421]);
    expect(h.receivedSince(before).map((x) => x.path)).toEqual(['/chat', '/second']);
    const events = await h.egressSince(mark, 3);
    expect(events.map((e) => [e.outcome, e.host, e.path, e.status]).sort()).toEqual([
      ['allowlist', 'echo.test', '/chat', 200],
      ['allowlist', 'echo.test', '/second', 200],
      ['blocked', 'echo.test', '/fronted', 421],
    ]);
  });

  it('a credentialed handshake: the credential goes into that handshake only; what follows is decided afresh', async () => {
    const mark = await h.mark();
    const before = h.echo.received.length;
    const r = await tlsThroughConnect(
      { port: h.port },
      {
        target: 'api.echo.test:443',
        servername: 'api.echo.test',
        ca: h.deployCa.certPem,
        request:
          handshake('/repos/acme/ws', 'api.echo.test', 'Authorization: Bearer mine\r\n') +
          'POST /repos/acme/x HTTP/1.1\r\nHost: api.echo.test\r\nContent-Length: 0\r\n\r\n' +
          'GET /repos/acme/y HTTP/1.1\r\nHost: api.echo.test\r\nConnection: close\r\n\r\n',
      },
    );
    expect(statuses(r.response)).toEqual([200, 200, 200]);
    const got = h.receivedSince(before);
    expect(got.map((x) => [x.method, x.path, authOf(x)])).toEqual([
      ['GET', '/repos/acme/ws', [`Bearer ${h.secret}`]],
      ['POST', '/repos/acme/x', []],
      ['GET', '/repos/acme/y', [`Bearer ${h.secret}`]],
    ]);
    // The handshake's upstream connection (which carried the credential) is not reused.
    expect([got[1]!.remotePort, got[2]!.remotePort]).not.toContain(got[0]!.remotePort);
    const events = await h.egressSince(mark, 3);
    expect(events.map((e) => [e.outcome, e.method, e.path])).toEqual([
      ['credential', 'GET', '/repos/acme/ws'],
      ['allowlist', 'POST', '/repos/acme/x'],
      ['credential', 'GET', '/repos/acme/y'],
    ]);
  });

  it('an upgrade to something other than WebSocket (h2c) is forwarded as a plain request, and the connection stays parsed', async () => {
    const before = h.echo.received.length;
    const raw = await pipelined(
      'GET http://echo.test/h2 HTTP/1.1\r\nHost: echo.test\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n',
      'GET http://evil.test/x HTTP/1.1\r\nHost: evil.test\r\nConnection: close\r\n\r\n',
    );
    expect(statuses(raw)).toEqual([200, 403]);
    const [reply] = h.receivedSince(before);
    expect(reply!.path).toBe('/h2');
    expect(reply!.headers.upgrade).toBeUndefined();
    expect(reply!.headers['http2-settings']).toBeUndefined();
  });

  it('an upgrade request with a body is refused (its body would pass for the next request)', async () => {
    const before = declining.connections.length;
    const raw = await pipelined(handshake('http://slow.echo.test/chat', 'slow.echo.test', 'Content-Length: 40\r\n'), 'GET http://evil.test/ HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(statuses(raw)).toEqual([400]);
    expect(declining.connections.length).toBe(before);
  });

  it('a client that floods bytes while the upstream has not answered is cut off; nothing reaches the upstream', async () => {
    const n = declining.connections.length;
    const raw = await pipelined(handshake('http://slow.echo.test/chat', 'slow.echo.test'), 'x'.repeat(200 * 1024));
    expect(statuses(raw)).toEqual([]);
    await sleep(400);
    const conn = declining.connections[n];
    expect((conn?.beforeAnswer ?? '') + (conn?.afterAnswer ?? '')).toBe('');
    await h.expectServing();
  });
});

describe('a 101 splices only from the 101 on', () => {
  it('bytes the client sends before the 101 are held, then delivered after it', async () => {
    const mark = await h.mark();
    const raw = await new Promise<string>((resolve) => {
      const s = netConnect({ host: '127.0.0.1', port: h.port });
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => {
        chunks.push(d);
        if (Buffer.concat(chunks).toString('latin1').includes('echo:early-frame')) s.end();
      });
      s.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
      setTimeout(() => s.destroy(), 4000);
      s.write(handshake('http://fast.echo.test/ws', 'fast.echo.test') + 'early-frame');
    });
    expect(statuses(raw)).toEqual([101]);
    expect(raw).toContain('echo:early-frame');
    const conn = switching.connections.at(-1)!;
    expect(conn.beforeAnswer).toBe('');
    expect(conn.afterAnswer).toBe('early-frame');
    const [event] = await h.egressSince(mark, 1);
    expect(event).toMatchObject({ outcome: 'allowlist', host: 'fast.echo.test', path: '/ws', status: 101 });
  });

  it('wss inside a tunnel with a credential: injected into the handshake only, replacing the client value', async () => {
    const r = await tlsThroughConnect(
      { port: h.port },
      { target: 'wss.echo.test:443', servername: 'wss.echo.test', ca: h.deployCa.certPem, request: handshake('/socket', 'wss.echo.test', 'Authorization: Bearer mine\r\n') + 'frame-after' },
    );
    expect(statuses(r.response)).toEqual([101]);
    const conn = switchingTls.connections.at(-1)!;
    expect(conn.handshake).toContain(`authorization: Bearer ${h.secret}`);
    expect(conn.handshake).not.toContain('mine');
    expect(conn.beforeAnswer).toBe('');
    expect(conn.afterAnswer).toBe('frame-after');
    expect(r.response).toContain('echo:frame-after');
  });
});
