import { lookup } from 'node:dns/promises';
import { request } from 'node:https';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { checkServerIdentity, rootCertificates } from 'node:tls';
import { CONNECT_TO_PATTERN } from '../../config/schema.js';
import { failure } from '../../errors.js';
import { compileCidrTexts } from '../../policy/cidr.js';
import { isForbiddenAddress } from '../../policy/ssrf.js';

/**
 * The HTTP client that fetches tokens (GitHub App, OAuth 2.0). HTTPS only,
 * with certificate verification against the system roots plus an optional
 * extra CA, and curl-style connect-to mappings (so tests and odd deployments
 * can point a host at another address while TLS still checks the real name).
 *
 * The same SSRF guard as for requests: the name is resolved once, every
 * address is checked with isForbiddenAddress (loopback, private, metadata,
 * the proxy's own addresses... are refused; no bundle entry applies to a
 * token endpoint), and exactly the checked address is dialled. An explicit
 * connect-to mapping is an admin decision and may reach loopback, as it may
 * for requests. Every failure carries the code `token_fetch_failed`; its
 * message is for admins (the proxy shows the caller a generic reason).
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
  /** Addresses of the proxy itself (listeners), refused besides its interface addresses. */
  selfAddresses?: string[];
  timeoutMs?: number;
  maxResponseBytes?: number;
}

const NO_ENTRIES = compileCidrTexts([]);

export function createTokenHttpClient(options: TokenHttpOptions = {}): TokenHttpClient {
  const extra = [options.caPem, options.caFile ? readCa(options.caFile) : undefined].filter((v): v is string => v !== undefined);
  const ca = extra.length > 0 ? [...rootCertificates, ...extra] : undefined;
  const mappings = (options.connectTo ?? []).map(parseConnectTo);
  const selfAddresses = [...ownInterfaceAddresses(), ...(options.selfAddresses ?? [])];
  const timeoutMs = options.timeoutMs ?? 10_000;
  const maxBytes = options.maxResponseBytes ?? 1024 * 1024;

  /** Resolve once, check, and say exactly where to dial. */
  const dialTarget = async (hostname: string, port: number, where: string): Promise<{ address: string; port: number }> => {
    const mapped = mappings.find((m) => m.host === hostname && m.port === port);
    if (mapped) {
      const address = isIP(mapped.toHost) ? mapped.toHost : await lookupAll(mapped.toHost, where).then((a) => a[0]!);
      return { address, port: mapped.toPort };
    }
    const addresses = isIP(hostname) ? [hostname] : await lookupAll(hostname, where);
    for (const address of addresses) {
      const why = isForbiddenAddress(address, { allowed: NO_ENTRIES, selfAddresses });
      if (why) {
        throw failure(`token request to ${where} refused before connecting: ${hostname} resolves to a forbidden address: ${why} (map it with upstream.connectTo if it is meant)`, 'token_fetch_failed');
      }
    }
    return { address: addresses[0]!, port };
  };

  return {
    async request(req) {
      const { url } = req;
      // Only the origin and path go into messages: a query string could carry something private.
      const where = `${url.origin}${url.pathname}`;
      if (url.protocol !== 'https:') throw failure(`token request to ${where} refused: only https:// is allowed`, 'token_fetch_failed');
      const hostname = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
      const target = await dialTarget(hostname, Number(url.port || 443), where);
      return new Promise<TokenHttpResponse>((resolve, reject) => {
        const outgoing = request(
          {
            method: req.method,
            // An address, never a name: nothing is resolved a second time.
            host: target.address,
            port: target.port,
            path: `${url.pathname}${url.search}`,
            ...(isIP(hostname) ? {} : { servername: hostname }),
            headers: { ...req.headers, host: url.host, 'content-length': String(req.body.length) },
            ca,
            rejectUnauthorized: true,
            // The certificate must name the host of the URL, not the dialled address.
            checkServerIdentity: (_name, cert) => checkServerIdentity(hostname, cert),
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

async function lookupAll(name: string, where: string): Promise<string[]> {
  try {
    const results = await lookup(name, { all: true, verbatim: true });
    if (results.length > 0) return results.map((r) => r.address);
  } catch (error) {
    throw failure(`token request to ${where} failed: ${name} does not resolve (${(error as NodeJS.ErrnoException).code ?? 'error'})`, 'token_fetch_failed', error);
  }
  throw failure(`token request to ${where} failed: ${name} does not resolve`, 'token_fetch_failed');
}

function ownInterfaceAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flatMap((list) => list ?? [])
    .map((i) => i.address.replace(/%.*$/, ''));
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
