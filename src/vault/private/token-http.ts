import { request } from 'node:https';
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { CONNECT_TO_PATTERN } from '../../config/schema.js';
import { failure } from '../../errors.js';

/**
 * The HTTP client that fetches tokens (GitHub App, OAuth 2.0). HTTPS only,
 * with certificate verification against the system roots plus an optional
 * extra CA, and curl-style connect-to mappings (so tests and odd deployments
 * can point a host at another address while TLS still checks the real name).
 * Injectable: the resolver takes any TokenHttpClient.
 */
export interface TokenHttpRequest {
  method: 'POST';
  url: URL;
  headers: Record<string, string>;
  body: Buffer;
}

export interface TokenHttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface TokenHttpClient {
  request(req: TokenHttpRequest): Promise<TokenHttpResponse>;
}

export interface TokenHttpOptions {
  /** PEM file of an extra CA to trust (upstream.caFile). */
  caFile?: string;
  /** PEM text of an extra CA (tests). */
  caPem?: string;
  /** HOST:PORT:TOHOST:TOPORT (upstream.connectTo). */
  connectTo?: string[];
  timeoutMs?: number;
  maxResponseBytes?: number;
}

export function createTokenHttpClient(options: TokenHttpOptions = {}): TokenHttpClient {
  const extra = [options.caPem, options.caFile ? readCa(options.caFile) : undefined].filter((v): v is string => v !== undefined);
  const ca = extra.length > 0 ? [...rootCertificates, ...extra] : undefined;
  const mappings = (options.connectTo ?? []).map(parseConnectTo);
  const timeoutMs = options.timeoutMs ?? 10_000;
  const maxBytes = options.maxResponseBytes ?? 1024 * 1024;

  return {
    request(req) {
      const { url } = req;
      // Only the origin and path go into messages: a query string could carry something private.
      const where = `${url.origin}${url.pathname}`;
      if (url.protocol !== 'https:') return Promise.reject(failure(`token request to ${where} refused: only https:// is allowed`, 'token_fetch_failed'));
      const hostname = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
      const port = Number(url.port || 443);
      const mapped = mappings.find((m) => m.host === hostname && m.port === port);
      return new Promise<TokenHttpResponse>((resolve, reject) => {
        const outgoing = request(
          {
            method: req.method,
            host: mapped?.toHost ?? hostname,
            port: mapped?.toPort ?? port,
            path: `${url.pathname}${url.search}`,
            servername: isIpLiteral(hostname) ? undefined : hostname,
            headers: { ...req.headers, host: url.host, 'content-length': String(req.body.length) },
            ca,
            // The certificate is checked against `servername`: the real host, not the mapped address.
            rejectUnauthorized: true,
            agent: false,
            timeout: timeoutMs,
          },
          (res) => {
            const chunks: Buffer[] = [];
            let size = 0;
            res.on('data', (chunk: Buffer) => {
              size += chunk.length;
              if (size > maxBytes) {
                res.destroy();
                reject(failure(`token response from ${where} is larger than ${maxBytes} bytes`, 'token_fetch_failed'));
                return;
              }
              chunks.push(chunk);
            });
            res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
            res.on('error', (error) => reject(failure(`token request to ${where} failed: ${error.message}`, 'token_fetch_failed', error)));
          },
        );
        outgoing.on('timeout', () => outgoing.destroy(new Error(`no answer within ${timeoutMs} ms`)));
        outgoing.on('error', (error: NodeJS.ErrnoException) =>
          reject(failure(`token request to ${where} failed: ${error.code ?? ''} ${error.message}`.replace(/\s+/g, ' '), 'token_fetch_failed', error)),
        );
        outgoing.end(req.body);
      });
    },
  };
}

function readCa(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw failure(`cannot read the upstream CA file ${file}: ${(error as Error).message}`, 'ca_unreadable', error);
  }
}

function parseConnectTo(spec: string): { host: string; port: number; toHost: string; toPort: number } {
  const m = CONNECT_TO_PATTERN.exec(spec);
  if (!m) throw failure(`invalid connect-to mapping "${spec}": expected HOST:PORT:TOHOST:TOPORT`, 'invalid_connect_to');
  const strip = (h: string) => h.replace(/^\[|\]$/g, '');
  return { host: strip(m[1]!).toLowerCase(), port: Number(m[2]), toHost: strip(m[3]!), toPort: Number(m[4]) };
}

function isIpLiteral(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}
