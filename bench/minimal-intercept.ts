/**
 * The proxy bench's ceiling for this runtime: the least a Node intercepting
 * proxy can do, in its own process. Raw `net` + `tls` only — no `http`
 * module, no undici, no policy, no audit:
 *   - read one CONNECT head, answer 200;
 *   - terminate TLS on the tunnel with a leaf from the local CA (minted once per host);
 *   - parse requests minimally (head up to CRLFCRLF, Content-Length bodies; no chunked
 *     requests, no pipelining), replace the Authorization header with the injected value,
 *   - forward each request over one kept-alive TLS connection to the upstream per client
 *     connection, and stream the response back by its Content-Length.
 * Every connection goes to TOHOST:TOPORT, verified as the CONNECT's host.
 *
 * argv[2]: JSON {caCertFile, caKeyFile, upstreamCaFile, toHost, toPort, inject?}.
 * Prints {"port":N} when listening; exits when stdin ends.
 */
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { connect as tlsConnect, createSecureContext, TLSSocket, type SecureContext } from 'node:tls';
import { issueServerCertificate, loadCertificateAuthority } from '../src/tls/certificates.js';

interface Spec {
  caCertFile: string;
  caKeyFile: string;
  upstreamCaFile: string;
  toHost: string;
  toPort: number;
  /** The Authorization value every request gets (none when absent). */
  inject?: string;
}

const spec = JSON.parse(process.argv[2]!) as Spec;
const ca = await loadCertificateAuthority(readFileSync(spec.caCertFile, 'utf8'), readFileSync(spec.caKeyFile, 'utf8'));
const upstreamCa = readFileSync(spec.upstreamCaFile, 'utf8');
const HEAD_MAX = 64 * 1024;
const CRLF2 = Buffer.from('\r\n\r\n');
const EMPTY: Buffer = Buffer.alloc(0);

const leaves = new Map<string, Promise<SecureContext>>();
function leafFor(host: string): Promise<SecureContext> {
  let leaf = leaves.get(host);
  if (!leaf) {
    leaf = issueServerCertificate(ca, [host]).then((c) => createSecureContext({ cert: c.certPem, key: c.keyPem }));
    leaves.set(host, leaf);
  }
  return leaf;
}

const contentLength = (head: string): number | 'chunked' | undefined => {
  if (/\r\ntransfer-encoding:[^\r]*chunked/i.test(head)) return 'chunked';
  const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  return m ? Number(m[1]) : undefined;
};

function onClient(socket: Socket): void {
  socket.setNoDelay(true);
  socket.on('error', () => socket.destroy());
  let buf: Buffer = EMPTY;
  const onData = (d: Buffer) => {
    buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
    const end = buf.indexOf(CRLF2);
    if (end < 0) {
      if (buf.length > HEAD_MAX) socket.destroy();
      return;
    }
    socket.off('data', onData);
    socket.pause();
    const m = /^CONNECT ([^\s:]+|\[[^\]]+\]):(\d+) HTTP\/1\.[01]\r$/m.exec(buf.subarray(0, buf.indexOf('\n') + 1).toString('latin1'));
    if (!m) return void socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
    // Clients wait for the 200 before their ClientHello; bytes sent early are not supported.
    if (buf.length > end + 4) return void socket.destroy();
    const host = m[1]!.toLowerCase();
    leafFor(host).then(
      (context) => {
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        intercept(socket, host, context);
      },
      () => socket.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n'),
    );
  };
  socket.on('data', onData);
}

/** One intercepted tunnel: requests in order, one at a time, over one upstream connection. */
function intercept(raw: Socket, host: string, secureContext: SecureContext): void {
  const client = new TLSSocket(raw, { isServer: true, secureContext, ALPNProtocols: ['http/1.1'] });
  client.setNoDelay?.(true);
  let upstream: TLSSocket | undefined;
  let pending: Buffer = EMPTY; // client bytes not yet forwarded
  let busy = false; // a request is at the upstream, its response not yet all back
  let response: Buffer = EMPTY; // the response head being collected
  let remaining = -1; // body bytes of the response still to stream; -1 while in the head
  const fail = () => {
    client.destroy();
    upstream?.destroy();
  };
  client.on('error', fail);
  client.on('close', () => upstream?.destroy());

  const openUpstream = (): TLSSocket => {
    const u = tlsConnect({ host: spec.toHost, port: spec.toPort, servername: host, ca: upstreamCa, ALPNProtocols: ['http/1.1'] });
    u.setNoDelay(true);
    u.on('error', fail);
    u.on('close', () => {
      if (upstream === u) upstream = undefined;
      if (busy) fail();
    });
    u.on('data', onUpstream);
    return u;
  };

  const next = () => {
    if (busy) return;
    const end = pending.indexOf(CRLF2);
    if (end < 0) {
      if (pending.length > HEAD_MAX) fail();
      return;
    }
    let head = pending.subarray(0, end).toString('latin1');
    const length = contentLength(head);
    if (length === 'chunked') return void client.end('HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    const total = end + 4 + (length ?? 0);
    if (pending.length < total) return;
    const body = pending.subarray(end + 4, total);
    pending = pending.subarray(total);
    if (spec.inject !== undefined) head = `${head.replace(/\r\nauthorization:[^\r]*/gi, '')}\r\nAuthorization: ${spec.inject}`;
    busy = true;
    remaining = -1;
    upstream ??= openUpstream();
    upstream.write(body.length > 0 ? Buffer.concat([Buffer.from(`${head}\r\n\r\n`, 'latin1'), body]) : `${head}\r\n\r\n`, 'latin1');
  };

  const done = () => {
    busy = false;
    response = EMPTY;
    next();
  };

  function onUpstream(d: Buffer): void {
    if (remaining >= 0) {
      client.write(d.length > remaining ? d.subarray(0, remaining) : d);
      remaining -= Math.min(remaining, d.length);
      if (remaining === 0) done();
      return;
    }
    response = response.length === 0 ? d : Buffer.concat([response, d]);
    const end = response.indexOf(CRLF2);
    if (end < 0) {
      if (response.length > HEAD_MAX) fail();
      return;
    }
    const head = response.subarray(0, end).toString('latin1');
    const status = Number(head.slice(9, 12));
    const length = contentLength(head);
    const bodyLength = status === 204 || status === 304 || (status >= 100 && status < 200) ? 0 : length;
    if (typeof bodyLength !== 'number') return fail(); // chunked or close-delimited: not this minimal proxy
    const have = response.length - end - 4;
    const total = end + 4 + Math.min(have, bodyLength);
    client.write(response.length > total ? response.subarray(0, total) : response);
    remaining = bodyLength - Math.min(have, bodyLength);
    if (remaining === 0) done();
  }

  client.on('data', (d: Buffer) => {
    pending = pending.length === 0 ? d : Buffer.concat([pending, d]);
    next();
  });
  raw.resume();
}

const server = createServer(onClient);
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`));
process.stdin.on('data', () => undefined);
process.stdin.on('end', () => process.exit(0));
