import { createHash, createHmac } from 'node:crypto';
import type { SignableRequest } from '../credentials.js';
import type { AwsSigV4Credential } from '../kinds.js';

/**
 * AWS Signature Version 4 (header form), after AWS's published description and
 * checked against its test suite (test/vault/fixtures). The proxy hands over
 * the request it is about to forward; the result is the headers to set.
 */
export interface SigV4Options {
  /** Signing time; now by default. */
  date?: Date;
  /**
   * Which of the request's headers to sign. 'standard' (default): host,
   * content-type, content-md5 and x-amz-*; these are what a proxy forwards
   * unchanged. 'all': every header given (the test suite signs all).
   */
  signedHeaders?: 'standard' | 'all';
}

export interface SigV4Result {
  headers: Record<string, string>;
  canonicalRequest: string;
  stringToSign: string;
}

// Headers the signer computes itself; a client-supplied copy is never signed or forwarded.
const COMPUTED = new Set(['authorization', 'x-amz-date', 'x-amz-security-token', 'x-amz-content-sha256']);

export function signSigV4(req: SignableRequest, cred: AwsSigV4Credential, options: SigV4Options = {}): SigV4Result {
  const amzDate = (options.date ?? new Date()).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const isS3 = cred.service === 's3' || cred.service === 's3-object-lambda';
  const payloadHash = sha256Hex(req.body);

  const added: Record<string, string> = { 'X-Amz-Date': amzDate };
  if (cred.sessionToken) added['X-Amz-Security-Token'] = cred.sessionToken;
  if (isS3) added['X-Amz-Content-Sha256'] = payloadHash;

  const toSign = new Map<string, string>();
  for (const [name, value] of Object.entries(req.headers)) {
    const lower = name.toLowerCase();
    if (COMPUTED.has(lower)) continue;
    if (options.signedHeaders === 'all' || lower === 'content-type' || lower === 'content-md5' || lower.startsWith('x-amz-')) {
      toSign.set(lower, canonicalHeaderValue(value));
    }
  }
  const hostHeader = Object.entries(req.headers).find(([k]) => k.toLowerCase() === 'host')?.[1];
  toSign.set('host', canonicalHeaderValue(hostHeader ?? req.url.host));
  for (const [name, value] of Object.entries(added)) toSign.set(name.toLowerCase(), value);

  const names = [...toSign.keys()].sort();
  const signedHeaders = names.join(';');
  const canonicalRequest = [
    req.method.toUpperCase(),
    canonicalUri(req.url.pathname, !isS3),
    canonicalQuery(req.url.search),
    names.map((n) => `${n}:${toSign.get(n)}\n`).join(''),
    signedHeaders,
    payloadHash,
  ].join('\n');

  const scope = `${day}/${cred.region}/${cred.service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(Buffer.from(canonicalRequest, 'utf8'))].join('\n');
  let key = hmac(`AWS4${cred.secretAccessKey}`, day);
  for (const part of [cred.region, cred.service, 'aws4_request']) key = hmac(key, part);
  const signature = createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex');

  return {
    headers: {
      Authorization: `AWS4-HMAC-SHA256 Credential=${cred.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
      ...added,
    },
    canonicalRequest,
    stringToSign,
  };
}

function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** Trim, and fold runs of spaces to one (outside the quotes rule AWS dropped in 2015). */
function canonicalHeaderValue(value: string): string {
  return value.trim().replace(/\s+/g, ' ');
}

/** RFC 3986 unreserved characters stay; everything else is %XX, upper-case hex. */
function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/**
 * Non-S3 services: the path normalised (dot segments and empty segments
 * removed) and each segment of the on-the-wire path encoded again. S3: the
 * path as sent, encoded once.
 */
function canonicalUri(pathname: string, normalise: boolean): string {
  const path = pathname === '' ? '/' : pathname;
  if (!normalise) return path.split('/').map((s) => uriEncode(safeDecode(s))).join('/');
  const out: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') out.pop();
    else out.push(segment);
  }
  const trailing = path.endsWith('/') && out.length > 0 ? '/' : '';
  return `/${out.map(uriEncode).join('/')}${trailing}`;
}

function canonicalQuery(search: string): string {
  if (search === '' || search === '?') return '';
  const pairs = search
    .slice(1)
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const eq = p.indexOf('=');
      const key = eq === -1 ? p : p.slice(0, eq);
      const value = eq === -1 ? '' : p.slice(eq + 1);
      return [uriEncode(safeDecode(key)), uriEncode(safeDecode(value))] as const;
    });
  pairs.sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}
