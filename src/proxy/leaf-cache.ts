import type { webcrypto } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { CertificateAuthority } from '../tls/certificates.js';

/** The CA as PEM text; parsed (with @peculiar/x509) only when the first leaf is minted. */
export interface CaPem {
  certPem: string;
  keyPem: string;
}

// The certificate library is heavy to load; a one-shot command that makes no
// HTTPS request never needs it.
const certificates = () => import('../tls/certificates.js');

/**
 * Leaf certificates for intercepted TLS, one per host name, held as ready TLS
 * secure contexts in a bounded LRU. All leaves share one key pair (made at
 * start), so minting a leaf is one ECDSA signature rather than a key
 * generation; the leaves are short-lived and re-minted before they expire.
 */
export interface LeafCacheStats {
  hits: number;
  misses: number;
  size: number;
}

export class LeafCache {
  private readonly entries = new Map<string, { context: SecureContext; expiresAt: number }>();
  private readonly pending = new Map<string, Promise<SecureContext>>();
  private keys: Promise<{ pair: CryptoKeyPair; pem: string }> | undefined;
  private parsedCa: Promise<CertificateAuthority> | undefined;
  readonly stats: LeafCacheStats = { hits: 0, misses: 0, size: 0 };

  constructor(
    private readonly ca: CaPem,
    private readonly options: { maxEntries?: number; validSeconds?: number } = {},
  ) {}

  /** The secure context for a normalised host name (or IP literal). */
  get(host: string): SecureContext | Promise<SecureContext> {
    const hit = this.entries.get(host);
    if (hit && hit.expiresAt > Date.now()) {
      // Re-insert to mark as most recently used.
      this.entries.delete(host);
      this.entries.set(host, hit);
      this.stats.hits += 1;
      return hit.context;
    }
    const inFlight = this.pending.get(host);
    if (inFlight) return inFlight;
    this.stats.misses += 1;
    const minted = this.mint(host).finally(() => this.pending.delete(host));
    this.pending.set(host, minted);
    return minted;
  }

  private async mint(host: string): Promise<SecureContext> {
    const validSeconds = this.options.validSeconds ?? 24 * 3600;
    const { pair, pem } = await this.leafKeys();
    this.parsedCa ??= certificates().then((c) => c.loadCertificateAuthority(this.ca.certPem, this.ca.keyPem));
    const { issueServerCertificate } = await certificates();
    const leaf = await issueServerCertificate(await this.parsedCa, [host], { validSeconds, keys: pair, keyPem: pem });
    const context = createSecureContext({ cert: leaf.certPem + this.ca.certPem, key: leaf.keyPem, minVersion: 'TLSv1.2' });
    // Renew an hour (or a tenth of the lifetime) before expiry.
    const expiresAt = Date.now() + validSeconds * 1000 - Math.min(3600_000, validSeconds * 100);
    this.entries.set(host, { context, expiresAt });
    const max = this.options.maxEntries ?? 1000;
    while (this.entries.size > max) this.entries.delete(this.entries.keys().next().value!);
    this.stats.size = this.entries.size;
    return context;
  }

  private leafKeys(): Promise<{ pair: CryptoKeyPair; pem: string }> {
    this.keys ??= certificates().then(async ({ generateKeyPair, privateKeyPem }) => {
      const pair = await generateKeyPair();
      return { pair, pem: await privateKeyPem(pair.privateKey) };
    });
    return this.keys;
  }
}

type CryptoKeyPair = webcrypto.CryptoKeyPair;
