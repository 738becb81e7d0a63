// The certificate library (the reference below) resolves its parts through tsyringe.
import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  createCertificateAuthority,
  generateKeyPair,
  LeafIssuer,
  loadCertificateAuthority,
  type CertificateAuthority,
} from '../../src/tls/certificates.js';

/** Where a DER TLV's value starts and how long it is. */
function header(der: Buffer, at: number): { start: number; length: number } {
  const first = der[at + 1]!;
  if (first < 0x80) return { start: at + 2, length: first };
  const n = first & 0x7f;
  return { start: at + 2 + n, length: der.readUIntBE(at + 2, n) };
}

/** The TBSCertificate of a DER certificate: the first element of its outer SEQUENCE. */
function tbsOf(der: Buffer): Buffer {
  const outer = header(der, 0);
  const tbs = header(der, outer.start);
  return der.subarray(outer.start, tbs.start + tbs.length);
}

const openssl = (args: string[]) => execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

describe('leaf issuer (template + one signature)', () => {
  let ca: CertificateAuthority;
  let issuer: LeafIssuer;
  let dir: string;
  beforeAll(async () => {
    ca = await createCertificateAuthority({ commonName: 'Leaf Issuer Test CA' });
    issuer = await LeafIssuer.create(ca, await generateKeyPair());
    dir = mkdtempSync(join(tmpdir(), 'tagbox-leaf-'));
    writeFileSync(join(dir, 'ca.pem'), ca.certPem);
  });

  it('builds the same to-be-signed bytes as the certificate library for the same inputs (a CN of up to 64 characters)', async () => {
    const keys = await generateKeyPair();
    const ours = await LeafIssuer.create(ca, keys);
    for (const names of [['api.example.test'], ['a.test', '*.b.test', '127.0.0.1', '::1'], ['x'.repeat(59) + '.test']]) {
      const leaf = ours.issue(names, 3600);
      const cert = new X509Certificate(leaf.certPem);
      // The library, given what our leaf says (serial, validity), must write the same TBS.
      const reference = await x509.X509CertificateGenerator.create({
        serialNumber: cert.serialNumber,
        subject: new x509.Name([{ '2.5.4.3': [{ utf8String: names[0]! }] }]),
        issuer: ca.certificate.subjectName,
        notBefore: new Date(cert.validFrom),
        notAfter: new Date(cert.validTo),
        signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
        publicKey: await x509.PublicKey.create(keys.publicKey),
        signingKey: ca.privateKey,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
          await x509.AuthorityKeyIdentifierExtension.create(ca.certificate, false),
          new x509.SubjectAlternativeNameExtension(names.map((n) => ({ type: /^[\d.]+$|:/.test(n) ? ('ip' as const) : ('dns' as const), value: n }))),
        ],
      });
      expect(tbsOf(cert.raw).toString('hex'), names.join(',')).toBe(tbsOf(Buffer.from(reference.rawData)).toString('hex'));
    }
  });

  it('issues leaves that Node and OpenSSL verify against the CA, for the names given and no others', () => {
    const leaf = issuer.issue(['api.example.test', '*.wild.test', '10.1.2.3', '2001:db8::1'], 3600);
    const cert = new X509Certificate(leaf.certPem);
    const caCert = new X509Certificate(ca.certPem);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.subject).toBe('CN=api.example.test');
    expect(cert.subjectAltName).toBe('DNS:api.example.test, DNS:*.wild.test, IP Address:10.1.2.3, IP Address:2001:DB8:0:0:0:0:0:1');
    expect(cert.checkHost('api.example.test')).toBe('api.example.test');
    expect(cert.checkHost('x.wild.test')).toBe('*.wild.test');
    expect(cert.checkHost('a.x.wild.test')).toBeUndefined();
    expect(cert.checkHost('other.example.test')).toBeUndefined();
    expect(cert.checkIP('10.1.2.3')).toBe('10.1.2.3');
    expect(cert.checkIP('10.1.2.4')).toBeUndefined();
    expect(cert.ca).toBe(false);
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(Date.parse(cert.validTo) - Date.now()).toBeLessThanOrEqual(3600_000 + 1000);
    expect(Date.now() - Date.parse(cert.validFrom)).toBeGreaterThanOrEqual(59_000);
    const file = join(dir, 'leaf.pem');
    writeFileSync(file, leaf.certPem);
    expect(openssl(['verify', '-CAfile', join(dir, 'ca.pem'), '-purpose', 'sslserver', '-x509_strict', file])).toContain(': OK');
    const text = openssl(['x509', '-in', file, '-noout', '-text']);
    expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE/);
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Digital Signature/);
    expect(text).toMatch(/X509v3 Authority Key Identifier:/);
  });

  it('gives every leaf its own positive 128-bit serial', () => {
    const serials = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const serial = new X509Certificate(issuer.issue(['s.test']).certPem).serialNumber;
      // 16 bytes, the first 01-7f: positive, and no byte lost to a leading zero.
      expect(serial).toMatch(/^(0[1-9A-F]|[1-7][0-9A-F])[0-9A-F]{30}$/);
      serials.add(serial);
    }
    expect(serials.size).toBe(200);
  });

  it('puts a name too long for a CN in a critical SAN under an empty subject, which OpenSSL accepts', () => {
    const long = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.test`;
    const file = join(dir, 'long.pem');
    writeFileSync(file, issuer.issue([long]).certPem);
    const cert = new X509Certificate(readFileSync(file));
    expect(cert.subject ?? '').toBe('');
    expect(cert.checkHost(long)).toBe(long);
    expect(openssl(['verify', '-CAfile', join(dir, 'ca.pem'), '-purpose', 'sslserver', '-x509_strict', file])).toContain(': OK');
    expect(openssl(['x509', '-in', file, '-noout', '-text'])).toMatch(/X509v3 Subject Alternative Name: critical/);
  });

  it('refuses names a certificate cannot carry rather than writing a broken one', () => {
    expect(() => issuer.issue([])).toThrow(/at least one name/);
    expect(() => issuer.issue(['bücher.test'])).toThrow(/not an ASCII host name/);
    expect(() => issuer.issue(['a b.test'])).toThrow(/not an ASCII host name/);
  });

  it('chains to a CA made elsewhere (OpenSSL, several RDNs, PrintableString) with its own key identifier', async () => {
    const key = join(dir, 'byo.key');
    const cert = join(dir, 'byo.pem');
    openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
    openssl(['pkcs8', '-topk8', '-nocrypt', '-in', key, '-out', `${key}.p8`]);
    openssl([
      'req', '-x509', '-new', '-key', key, '-out', cert, '-days', '2', '-subj', '/C=DE/O=Example GmbH/OU=Platform/CN=Corp Proxy CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-addext', 'subjectKeyIdentifier=hash',
    ]);
    const byo = await loadCertificateAuthority(readFileSync(cert, 'utf8'), readFileSync(`${key}.p8`, 'utf8'));
    const leafFile = join(dir, 'byo-leaf.pem');
    writeFileSync(leafFile, (await LeafIssuer.create(byo, await generateKeyPair())).issue(['svc.corp.test']).certPem);
    const leaf = new X509Certificate(readFileSync(leafFile));
    expect(leaf.issuer).toBe(new X509Certificate(readFileSync(cert)).subject);
    expect(openssl(['verify', '-CAfile', cert, '-purpose', 'sslserver', '-x509_strict', leafFile])).toContain(': OK');
  });
});
