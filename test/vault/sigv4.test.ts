import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { signSigV4 } from '../../src/vault/private/sigv4.js';

/**
 * AWS's Signature Version 4 test suite; the vectors and their source are in
 * fixtures/aws-sigv4-test-suite.json.
 */
interface Vector {
  name: string;
  req: string;
  authz: string;
  creq?: string;
  sts?: string;
}
const suite = JSON.parse(readFileSync(new URL('./fixtures/aws-sigv4-test-suite.json', import.meta.url), 'utf8')) as {
  credentials: { accessKeyId: string; secretAccessKey: string; region: string; service: string };
  vectors: Vector[];
};
const date = new Date('2015-08-30T12:36:00Z');

/** A .req file: request line, headers (Name:value), blank line, body. */
function parseReq(text: string) {
  const [head, body = ''] = text.split('\n\n');
  const [requestLine, ...headerLines] = head!.split('\n');
  const m = /^(\S+) (.+) HTTP\/1\.1$/.exec(requestLine!)!;
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon)] = line.slice(colon + 1);
  }
  return { method: m[1]!, url: new URL(`https://${headers.Host}${m[2]}`), headers, body: Buffer.from(body) };
}

describe('SigV4 against the AWS test suite', () => {
  it.each(suite.vectors.map((v) => [v.name, v] as const))('%s', (_name, vector) => {
    const req = parseReq(vector.req);
    const token = req.headers['X-Amz-Security-Token'];
    const result = signSigV4(req, { ...suite.credentials, ...(token ? { sessionToken: token } : {}) }, { date, signedHeaders: 'all' });
    if (vector.creq) expect(result.canonicalRequest).toBe(vector.creq);
    if (vector.sts) expect(result.stringToSign).toBe(vector.sts);
    expect(result.headers.Authorization).toBe(vector.authz);
    expect(result.headers['X-Amz-Date']).toBe('20150830T123600Z');
  });
});

describe('SigV4 in the proxy', () => {
  const cred = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', region: 'eu-west-1', service: 's3' };

  it('signs only headers a proxy forwards unchanged, and ignores client-supplied auth headers', () => {
    const result = signSigV4(
      {
        method: 'PUT',
        url: new URL('https://bucket.s3.eu-west-1.amazonaws.com/a%20b.txt?x-id=PutObject'),
        headers: { Host: 'bucket.s3.eu-west-1.amazonaws.com', 'User-Agent': 'curl', 'Content-Type': 'text/plain', Authorization: 'forged', 'X-Amz-Date': '19990101T000000Z' },
        body: Buffer.from('hello'),
      },
      { ...cred, sessionToken: 'session' },
      { date },
    );
    expect(result.headers.Authorization).toMatch(/SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token,/);
    expect(result.headers['X-Amz-Content-Sha256']).toBe('2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
    expect(result.headers['X-Amz-Security-Token']).toBe('session');
    // S3 paths are encoded once, as sent.
    expect(result.canonicalRequest.split('\n')[1]).toBe('/a%20b.txt');
  });

  it('encodes other services\' paths twice', () => {
    const result = signSigV4({ method: 'GET', url: new URL('https://x.execute-api.eu-west-1.amazonaws.com/a%20b'), headers: {}, body: Buffer.alloc(0) }, { ...cred, service: 'execute-api' }, { date });
    expect(result.canonicalRequest.split('\n')[1]).toBe('/a%2520b');
    expect(result.headers['X-Amz-Content-Sha256']).toBeUndefined();
  });
});
