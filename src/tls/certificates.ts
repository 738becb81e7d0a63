// @peculiar/x509 resolves its parts through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';
import { webcrypto, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';

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
 * for every leaf — the public key, the CA's key identifier, the fixed
 * extensions — is computed once: minting went from ~8 ms to a few ms.
 */
export class LeafIssuer {
  private constructor(
    private readonly ca: CertificateAuthority,
    private readonly publicKey: x509.PublicKey,
    private readonly keyPem: string,
    private readonly fixedExtensions: x509.Extension[],
  ) {}

  static async create(ca: CertificateAuthority, keys: CryptoKeyPair, keyPem?: string): Promise<LeafIssuer> {
    return new LeafIssuer(
      ca,
      await x509.PublicKey.create(keys.publicKey),
      keyPem ?? (await privateKeyPem(keys.privateKey)),
      [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        await x509.AuthorityKeyIdentifierExtension.create(ca.certificate, false),
      ],
    );
  }

  async issue(names: string[], validSeconds = 86_400): Promise<IssuedCertificate> {
    if (names.length === 0) throw new Error('a server certificate needs at least one name');
    const now = Date.now();
    const certificate = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: `CN=${escapeDn(names[0]!)}`,
      issuer: this.ca.certificate.subject,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + validSeconds * 1000),
      signingAlgorithm: SIGNING,
      publicKey: this.publicKey,
      signingKey: this.ca.privateKey,
      extensions: [
        ...this.fixedExtensions,
        new x509.SubjectAlternativeNameExtension(names.map((n) => ({ type: isIP(n) ? ('ip' as const) : ('dns' as const), value: n }))),
      ],
    });
    return { certPem: certificate.toString('pem') + '\n', keyPem: this.keyPem };
  }
}

export async function privateKeyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await crypto.subtle.exportKey('pkcs8', key));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END PRIVATE KEY-----\n`;
}

function serial(): string {
  // Positive 128-bit serial (top bit cleared).
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString('hex');
}

function escapeDn(value: string): string {
  return value.replace(/([,+"\\<>;=])/g, '\\$1');
}
