import type { IncomingHttpHeaders } from 'node:http';

/**
 * Header hygiene at the boundary. Hop-by-hop headers, anything named in
 * Connection, and every Proxy-* header are meant for the proxy, never for the
 * upstream; Expect is answered by the proxy itself.
 */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization',
  'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect', 'host',
]);

export type OutgoingHeaders = Record<string, string | string[]>;

/** Client headers to forward, with the hop-by-hop set removed (and `drop`, lower-case). */
export function forwardableRequestHeaders(headers: IncomingHttpHeaders, drop: ReadonlySet<string> = new Set()): OutgoingHeaders {
  const named = connectionTokens(headers.connection);
  const out: OutgoingHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    if (HOP_BY_HOP.has(name) || name.startsWith('proxy-') || named.has(name) || drop.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/** Upstream response headers to pass back, minus hop-by-hop ones. */
export function forwardableResponseHeaders(headers: Record<string, string | string[] | undefined>): OutgoingHeaders {
  const named = connectionTokens(headers.connection);
  const out: OutgoingHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    if ((HOP_BY_HOP.has(name) && name !== 'host') || name.startsWith('proxy-') || named.has(name)) continue;
    out[name] = value;
  }
  return out;
}

function connectionTokens(value: string | string[] | undefined): Set<string> {
  if (!value) return new Set();
  return new Set((Array.isArray(value) ? value.join(',') : value).split(',').map((t) => t.trim().toLowerCase()).filter(Boolean));
}

/** How many times a header appears in the raw list (Node folds duplicates of some headers). */
export function countRawHeader(rawHeaders: string[], name: string): number {
  let n = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() === name) n += 1;
  return n;
}

/** Splits `host[:port]` (IPv6 in brackets). Undefined when it is not an authority. */
export function parseAuthority(authority: string): { host: string; port?: number } | undefined {
  const m = /^(\[[^\]]+\]|[^:[\]/?#@\s]+)(?::(\d{1,5}))?$/.exec(authority);
  if (!m) return undefined;
  const port = m[2] === undefined ? undefined : Number(m[2]);
  if (port !== undefined && (port < 1 || port > 65535)) return undefined;
  return { host: m[1]!.replace(/^\[|\]$/g, ''), ...(port === undefined ? {} : { port }) };
}

export function defaultPort(scheme: 'http' | 'https'): number {
  return scheme === 'https' ? 443 : 80;
}
