import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { admit, type ExchangeDeps } from './exchange.js';
import { defaultPort } from './headers.js';
import type { ListenerState, TunnelInfo } from './listener-state.js';
import { describeUpstreamError, hostForUrl } from './upstream.js';

/**
 * Upgrade requests (WebSocket) are decided like any request — including
 * credential injection into the handshake — and then spliced to the upstream.
 */
export async function handleUpgrade(deps: ExchangeDeps, state: ListenerState, req: IncomingMessage, client: Socket, head: Buffer, tunnel?: TunnelInfo): Promise<void> {
  client.on('error', () => client.destroy());
  const admission = await admit(deps, state, req, tunnel);
  if (!admission.ok) return answer(client, admission.status, admission.malformed ? admission.reason : `blocked by Tagbox: ${admission.reason}`);
  const { decision, headers, record } = admission;
  const { scheme, port, pathAndQuery } = admission.target;
  let upstream: Socket;
  try {
    upstream = await deps.upstreams.dial(admission.upstream);
  } catch (error) {
    const { status, reason } = describeUpstreamError(error, decision.host);
    record.finish({ status, reason });
    return answer(client, status, reason);
  }
  const authority = port === defaultPort(scheme) ? hostForUrl(decision.host) : `${hostForUrl(decision.host)}:${port}`;
  const lines = [`${req.method} ${pathAndQuery} HTTP/1.1`, `host: ${authority}`, 'connection: Upgrade', `upgrade: ${req.headers.upgrade ?? 'websocket'}`];
  for (const [name, value] of Object.entries(headers)) for (const v of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${v}`);
  upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
  if (head.length) upstream.write(head);
  let status: number | undefined;
  let bytes = 0;
  upstream.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    status ??= Number(/^HTTP\/1\.[01] (\d{3})/.exec(chunk.subarray(0, 16).toString('latin1'))?.[1]) || undefined;
  });
  upstream.pipe(client);
  client.pipe(upstream);
  const end = () => {
    upstream.destroy();
    client.destroy();
    record.finish({ ...(status !== undefined ? { status } : {}), bytesOut: bytes });
  };
  upstream.on('error', end).on('close', end);
  client.on('close', end);
}

function answer(client: Socket, status: number, reason: string): void {
  const body = `${reason}\n`;
  client.end(`HTTP/1.1 ${status} Tagbox\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-tagbox-decision: blocked\r\nconnection: close\r\n\r\n${body}`);
}
