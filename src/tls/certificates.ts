// @peculiar/x509 resolves its parts through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';
import { webcrypto, randomBytes, sign, KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { LeafTemplate } from './leaf-template.js';

/**
 * Certificates for Tagbox: the deployment CA (ECDSA P-256) and the short-lived
 * leaves the Agent Proxy mints per SNI. Test fixtures use the same code for
 * their throwaway CAs, so there is one way to make a certificate here.
 */
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
const crypto = webcrypto;
x509.cryptoProvider.set(crypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const EC_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;

export interface CertificateAuthority {
  certPem: string;
  keyPem: string;
  certificate: x509.X509Certificate;
  privateKey: CryptoKey;
}

export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
}

export async function generateKeyPair(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify']) as Promise<CryptoKeyPair>;
}

export async function createCertificateAuthority(options: { commonName: string; validDays?: number }): Promise<CertificateAuthority> {
  const keys = await generateKeyPair();
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(Date.now() + (options.validDays ?? 3650) * 86_400_000);
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${escapeDn(options.commonName)}`,
    notBefore,
    notAfter,
    signingAlgorithm: SIGNING,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    certPem: certificate.toString('pem') + '\n',
    keyPem: await privateKeyPem(keys.privateKey),
    certificate,
    privateKey: keys.privateKey,
  };
}

export async function loadCertificateAuthority(certPem: string, keyPem: string): Promise<CertificateAuthority> {
  const certificate = new x509.X509Certificate(certPem);
  const der = Buffer.from(keyPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  const privateKey = await crypto.subtle.importKey('pkcs8', der, EC_KEY, true, ['sign']);
  return { certPem, keyPem, certificate, privateKey };
}

/**
 * A server certificate for the given DNS names and IP addresses, signed by the CA.
 * `keys` lets a caller reuse one leaf key pair across many leaves (the proxy
 * does, through a LeafIssuer, so that minting is mostly one signature).
 */
export async function issueServerCertificate(
  ca: CertificateAuthority,
  names: string[],
  options: { validSeconds?: number; keys?: CryptoKeyPair; keyPem?: string } = {},
): Promise<IssuedCertificate> {
  const keys = options.keys ?? (await generateKeyPair());
  const issuer = await LeafIssuer.create(ca, keys, options.keyPem);
  return issuer.issue(names, options.validSeconds);
}

/**
 * Mints leaves for one CA and one leaf key pair. Everything that is the same
 * for every leaf (the issuer's name, the public key, the CA's key identifier,
 * the fixed extensions) is encoded once, with the library; a leaf is then a
 * LeafTemplate assembly and one synchronous ECDSA signature: tens of
 * microseconds where the library took 2-3 ms.
 */
export class LeafIssuer {
  private constructor(
    private readonly template: LeafTemplate,
    private readonly signingKey: KeyObject,
    private readonly keyPem: string,
  ) {}

  static async create(ca: CertificateAuthority, keys: CryptoKeyPair, keyPem?: string): Promise<LeafIssuer> {
    const fixed = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      await x509.AuthorityKeyIdentifierExtension.create(ca.certificate, false),
    ];
    const template = new LeafTemplate({
      issuerName: Buffer.from(ca.certificate.subjectName.toArrayBuffer()),
      subjectPublicKeyInfo: Buffer.from(await crypto.subtle.exportKey('spki', keys.publicKey)),
      fixedExtensions: fixed.map((extension) => Buffer.from(extension.rawData)),
    });
    // SEC1 rather than PKCS#8: OpenSSL 3 decodes it faster into each leaf's secure context.
    const leafKeyPem = keyPem ?? (KeyObject.from(keys.privateKey).export({ type: 'sec1', format: 'pem' }) as string);
    return new LeafIssuer(template, KeyObject.from(ca.privateKey), leafKeyPem);
  }

  issue(names: string[], validSeconds = 86_400): IssuedCertificate {
    const now = Date.now();
    const tbs = this.template.tbs(names, serialBytes(), new Date(now - 60_000), new Date(now + validSeconds * 1000));
    const signature = sign('sha256', tbs, { key: this.signingKey, dsaEncoding: 'der' });
    const der = this.template.certificate(tbs, signature);
    return { certPem: `-----BEGIN CERTIFICATE-----\n${base64Lines(der)}\n-----END CERTIFICATE-----\n`, keyPem: this.keyPem };
  }
}

export async function privateKeyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await crypto.subtle.exportKey('pkcs8', key));
  return `-----BEGIN PRIVATE KEY-----\n${base64Lines(der)}\n-----END PRIVATE KEY-----\n`;
}

function base64Lines(der: Buffer): string {
  return der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
}

/** 16 random bytes, the first in 0x01-0x7f: a positive serial that DER encodes in exactly 16 bytes. */
function serialBytes(): Buffer {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes;
}

function serial(): string {
  return serialBytes().toString('hex');
}

function escapeDn(value: string): string {
  return value.replace(/([,+"\\<>;=])/g, '\\$1');
}
