import { connect as netConnect } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep, startHarness, statusOf, type Harness } from './harness.js';

/**
 * SigV4 signing needs the whole request body in memory. Each body is capped,
 * and so are all of them together: otherwise one session's concurrent uploads
 * (hundreds of connections x the per-body cap) could fill the proxy's memory
 * and take every other session down with it.
 */
const BUNDLES = `
bundles:
  - name: base
    domains: [echo.test]
    connections:
      - name: aws
        secret: aws-key
        allowedWebsites: [api.echo.test]
        inject:
          header: Authorization
          value: "{{secret}}"
`;

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ bundles: BUNDLES, limits: { maxSigningBufferBytes: 1_000_000 } });
  await h.vault!.sealer.put('aws-key', Buffer.from('{"accessKeyId":"AKIDTEST","secretAccessKey":"not-a-real-key","region":"us-east-1","service":"s3"}'), 'aws-sigv4');
});
afterAll(async () => h?.close());

/** An upload inside an intercepted tunnel, written in parts. */
async function upload(length: number): Promise<{ tls: TLSSocket; send(bytes: number): void; answer: Promise<string> }> {
  const socket = netConnect({ host: '127.0.0.1', port: h.port });
  await new Promise<void>((resolve) => {
    socket.once('data', () => resolve());
    socket.write('CONNECT api.echo.test:443 HTTP/1.1\r\nHost: api.echo.test:443\r\n\r\n');
  });
  const tls = tlsConnect({ socket, servername: 'api.echo.test', ca: h.deployCa.certPem });
  await new Promise<void>((resolve, reject) => tls.once('secureConnect', () => resolve()).once('error', reject));
  tls.write(`PUT /bucket/key HTTP/1.1\r\nHost: api.echo.test\r\nContent-Length: ${length}\r\nConnection: close\r\n\r\n`);
  const answer = new Promise<string>((resolve) => {
    let got = '';
    tls.on('data', (d: Buffer) => (got += d.toString('latin1')));
    tls.on('close', () => resolve(got));
    tls.on('error', () => resolve(got));
  });
  return { tls, send: (bytes) => void tls.write(Buffer.alloc(bytes, 0x61)), answer };
}

describe('request signing (SigV4)', () => {
  it('signs the request: the upstream gets an AWS4 Authorization and the body intact, the client value is replaced', async () => {
    const before = h.echo.received.length;
    const r = await h.curl('https://api.echo.test/bucket/key', ['-X', 'PUT', '-H', 'Authorization: mine', '--data-binary', 'hello']);
    expect(r.status).toBe(200);
    const [reply] = h.receivedSince(before);
    expect(String(reply!.headers.authorization)).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDTEST\//);
    expect(reply!.headers['x-amz-date']).toBeDefined();
    expect(reply!.body).toBe('hello');
  });

  it('bodies held for signing are bounded in total: one over the budget gets 503, the others and unsigned requests go on', async () => {
    const before = h.echo.received.length;
    const a = await upload(800_000);
    a.send(700_000);
    await sleep(200);
    // A second upload would take the total past 1 MB: refused, nothing sent upstream.
    const b = await upload(400_000);
    b.send(400_000);
    const refused = await b.answer;
    expect(statusOf(refused)).toBe(503);
    expect(refused).toContain('too many request bodies for signing');
    // Requests that sign nothing are not affected.
    await h.expectServing();
    // The first one completes and is signed; its bytes are then given back.
    a.send(100_000);
    expect(statusOf(await a.answer)).toBe(200);
    const c = await upload(400_000);
    c.send(400_000);
    expect(statusOf(await c.answer)).toBe(200);
    expect(h.receivedSince(before).filter((r) => r.path === '/bucket/key').map((r) => r.body.length)).toEqual([800_000, 400_000]);
  });
});
