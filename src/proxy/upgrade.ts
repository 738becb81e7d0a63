import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { admit, type ExchangeDeps } from './exchange.js';
import { defaultPort } from './headers.js';
import type { ListenerState, TunnelInfo } from './listener-state.js';
import { relayResponse } from './raw-response.js';
import { describeUpstreamError, hostForUrl } from './upstream.js';

/**
 * Upgrade requests (WebSocket) are decided like any request — including
 * credential injection into the handshake — and the connection becomes a raw
 * byte stream only after the upstream answered `101` to exactly that
 * handshake. Until then the client's bytes are held, never passed on: if the
 * upstream answers anything else, that answer is relayed as an ordinary
 * response and the client connection goes back to the HTTP parser, so every
 * request that follows is decided and audited on its own (no domain fronting
 * or unaudited requests behind a declined upgrade, and a credential goes only
 * into the handshake it was decided for). Upgrades to anything but WebSocket
 * (h2c, TLS) are forwarded as plain requests: the upstream cannot switch, so
 * whatever comes next is parsed too.
 */

/** Gives a client socket back to the HTTP server it came from, to parse its next request. */
export type Reparse = (socket: Duplex) => void;

export interface UpgradeLimits {
  /** Client bytes held while the upstream has not answered; more closes the connection. */
  maxHeldBytes: number;
  /** How long the upstream may take to answer the handshake. */
  answerTimeoutMs: number;
}

const DEFAULT_LIMITS: UpgradeLimits = { maxHeldBytes: 64 * 1024, answerTimeoutMs: 60_000 };

export async function handleUpgrade(
  deps: ExchangeDeps & { upgrade?: Partial<UpgradeLimits> },
  state: ListenerState,
  req: IncomingMessage,
  client: Duplex,
  head: Buffer,
  reparse: Reparse,
  tunnel?: TunnelInfo,
): Promise<void> {
  const limits = { ...DEFAULT_LIMITS, ...deps.upgrade };
  const onError = () => client.destroy();
  client.on('error', onError);
  const held = holdBytes(client, head, limits.maxHeldBytes);

  // Node hands over an upgrade right after its headers: a body would look
  // like the next request. WebSocket handshakes have none; refuse the rest.
  if (req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0') {
    deps.record.rejected(state, req, 400, 'an upgrade request cannot carry a body', tunnel);
    return answer(client, 400, 'an upgrade request cannot carry a body');
  }
  const admission = await admit(deps, state, req, tunnel, { bodyless: true });
  if (!admission.ok) return answer(client, admission.status, admission.malformed ? admission.reason : `blocked by Tagbox: ${admission.reason}`);
  const { decision, headers, record } = admission;
  // A raw byte stream cannot be metered: the model host of a metered listener is reached by plain requests only.
  if (admission.metered) {
    const reason = `${decision.host} is metered (model usage and budgets): upgrades to it are refused`;
    record.finish({ status: 403, outcome: 'blocked', reason });
    return answer(client, 403, `blocked by Tagbox: ${reason}`);
  }
  // A raw byte stream cannot be inspected either: a GitHub App token is never sent into one (a push must be read first).
  if (decision.inject?.github) {
    const reason = `${decision.host} is reached with a GitHub App token: upgrades are refused (pushes are inspected)`;
    record.finish({ status: 403, outcome: 'blocked', reason });
    return answer(client, 403, `blocked by Tagbox: ${reason}`);
  }
  const { scheme, port, pathAndQuery } = admission.target;
  const gone = () => record.finish({ reason: `${decision.reason}; the client closed the connection before the upstream answered` });
  if (client.destroyed) return gone();

  let upstream: Socket;
  try {
    upstream = (await deps.upstreams.dial(admission.upstream)) as Socket;
  } catch (error) {
    const { status, reason } = describeUpstreamError(error, decision.host);
    record.finish({ status, reason: `${decision.reason}; ${reason}` });
    return answer(client, status, reason);
  }
  if (client.destroyed) {
    upstream.destroy();
    return gone();
  }

  const websocket = /^\s*websocket\s*$/i.test(String(req.headers.upgrade ?? ''));
  const authority = port === defaultPort(scheme) ? hostForUrl(decision.host) : `${hostForUrl(decision.host)}:${port}`;
  const outgoing = httpRequest({
    method: req.method,
    path: pathAndQuery,
    headers: { ...headers, host: authority, ...(websocket ? { connection: 'Upgrade', upgrade: req.headers.upgrade! } : {}) },
    createConnection: () => upstream,
  });
  let settled = false;
  const timer = setTimeout(() => outgoing.destroy(Object.assign(new Error('no answer to the upgrade request'), { code: 'UND_ERR_HEADERS_TIMEOUT' })), limits.answerTimeoutMs);
  const settle = () => {
    settled = true;
    clearTimeout(timer);
  };
  const onClientClose = () => {
    if (settled) return;
    settle();
    upstream.destroy();
    gone();
  };
  client.once('close', onClientClose);

  outgoing.on('upgrade', (res: IncomingMessage, socket: Socket, upstreamHead: Buffer) => {
    if (settled) return void socket.destroy();
    settle();
    client.off('close', onClientClose);
    if (!websocket || res.statusCode !== 101) {
      socket.destroy();
      record.finish({ status: 502, reason: `${decision.reason}; the upstream switched protocols without being asked` });
      return answer(client, 502, `upstream ${decision.host} switched protocols without being asked`);
    }
    // The upstream switched for exactly this handshake: from here on it is a byte stream.
    let response = `HTTP/1.1 101 Switching Protocols\r\n`;
    for (let i = 0; i < res.rawHeaders.length; i += 2) {
      const name = res.rawHeaders[i]!.toLowerCase();
      if (name.startsWith('proxy-') || name === 'keep-alive' || name === 'transfer-encoding' || name === 'content-length') continue;
      response += `${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}\r\n`;
    }
    client.write(`${response}\r\n`);
    if (upstreamHead.length) client.write(upstreamHead);
    splice(client, socket, held.release(), (bytesOut, bytesIn) => record.finish({ status: 101, bytesOut, bytesIn }));
  });

  outgoing.on('response', (res: IncomingMessage) => {
    if (settled) return void res.destroy();
    settle();
    client.off('close', onClientClose);
    const keepAlive = !tokens(req.headers.connection).has('close') && req.httpVersion === '1.1' && !held.ended();
    relayResponse(client, res, req.method ?? 'GET').then(
      (bytes) => {
        upstream.destroy();
        record.finish({ status: res.statusCode, bytesOut: bytes });
        if (client.destroyed) return;
        if (!keepAlive) return void client.end();
        // Back to the HTTP parser, with whatever the client sent meanwhile.
        const early = held.release();
        client.off('error', onError);
        if (early.length) client.unshift(early);
        reparse(client);
        client.resume();
      },
      () => {
        upstream.destroy();
        client.destroy();
        record.finish({ status: res.statusCode, reason: `${decision.reason}; the answer to the upgrade request was cut short` });
      },
    );
  });

  outgoing.on('error', (error: Error) => {
    if (settled) return;
    settle();
    client.off('close', onClientClose);
    upstream.destroy();
    const { status, reason } = describeUpstreamError(error, decision.host);
    record.finish({ status, reason: `${decision.reason}; ${reason}` });
    answer(client, status, reason);
  });
  outgoing.end();
}

/**
 * Holds what the client sends while the upstream has not answered: nothing
 * goes through unparsed. The socket keeps flowing, so a close is noticed at
 * once; beyond `max` bytes the connection is closed.
 */
function holdBytes(socket: Duplex, head: Buffer, max: number) {
  const chunks: Buffer[] = head.length ? [head] : [];
  let size = head.length;
  let ended = false;
  const onData = (chunk: Buffer) => {
    size += chunk.length;
    if (size > max) socket.destroy();
    else chunks.push(chunk);
  };
  const onEnd = () => (ended = true);
  socket.on('data', onData);
  socket.once('end', onEnd);
  return {
    ended: () => ended,
    /** Stops holding and hands over what was held. */
    release(): Buffer {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.pause();
      return Buffer.concat(chunks);
    },
  };
}

/** Both ways, byte for byte, after a 101; `done` once, when either side closes. */
function splice(client: Duplex, upstream: Socket, early: Buffer, done: (bytesOut: number, bytesIn: number) => void): void {
  let bytesOut = 0;
  let bytesIn = early.length;
  if (early.length) upstream.write(early);
  upstream.on('data', (c: Buffer) => (bytesOut += c.length));
  client.on('data', (c: Buffer) => (bytesIn += c.length));
  upstream.pipe(client);
  client.pipe(upstream);
  let finished = false;
  const end = () => {
    if (finished) return;
    finished = true;
    upstream.destroy();
    client.destroy();
    done(bytesOut, bytesIn);
  };
  upstream.on('error', end).on('close', end);
  client.on('error', end).on('close', end);
}

function tokens(value: string | string[] | undefined): Set<string> {
  if (!value) return new Set();
  return new Set((Array.isArray(value) ? value.join(',') : value).split(',').map((t) => t.trim().toLowerCase()));
}

function answer(client: Duplex, status: number, reason: string): void {
  if (client.destroyed) return;
  const body = `${reason}\n`;
  client.end(`HTTP/1.1 ${status} Tagbox\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-tagbox-decision: blocked\r\nconnection: close\r\n\r\n${body}`);
}
