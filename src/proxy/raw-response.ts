import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { forwardableResponseHeaders } from './headers.js';

/**
 * Writes an upstream's answer to a client socket that no HTTP server owns at
 * the moment (an upgrade request the upstream declined): status line,
 * hop-by-hop-free headers and the body, framed so that the connection can go
 * on carrying requests (Content-Length kept when the upstream gave one, else
 * chunked). Resolves with the body's byte count once it is all queued; rejects
 * if either side fails midway (the client connection is then unusable).
 */
export function relayResponse(client: Duplex, res: IncomingMessage, method: string): Promise<number> {
  const status = res.statusCode ?? 502;
  const headers = forwardableResponseHeaders(res.headers);
  const bodiless = method === 'HEAD' || status === 204 || status === 304 || status < 200;
  const length = headers['content-length'];
  const chunked = !bodiless && (typeof length !== 'string' || !/^\d+$/.test(length));
  if (chunked) {
    delete headers['content-length'];
    headers['transfer-encoding'] = 'chunked';
  }
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
  for (const [name, value] of Object.entries(headers)) for (const v of Array.isArray(value) ? value : [value]) head += `${name}: ${v}\r\n`;
  client.write(`${head}\r\n`);

  return new Promise((resolve, reject) => {
    let bytes = 0;
    let ended = false;
    const fail = () => {
      if (ended) return;
      ended = true;
      cleanup();
      reject(new Error('the upstream answer was cut short'));
    };
    const onDrain = () => res.resume();
    const cleanup = () => {
      client.off('drain', onDrain);
      client.off('close', fail);
      res.off('close', fail);
      res.off('error', fail);
    };
    client.on('drain', onDrain);
    client.once('close', fail);
    res.once('close', fail);
    res.once('error', fail);
    if (bodiless) res.resume(); // drain and discard anything that came anyway
    else {
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (chunked) client.write(`${chunk.length.toString(16)}\r\n`);
        const ok = client.write(chunked ? Buffer.concat([chunk, CRLF]) : chunk);
        if (!ok) res.pause();
      });
    }
    res.once('end', () => {
      if (ended) return;
      ended = true;
      cleanup();
      // Writes stay in order: whatever the client's next request gets is written after this.
      if (chunked) client.write('0\r\n\r\n');
      resolve(bytes);
    });
  });
}

const CRLF = Buffer.from('\r\n');
