import { X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { LeafIssuer } from '../tls/certificates.js';

/** The CA as PEM text; parsed (with @peculiar/x509) only when the first leaf is minted. */
export interface CaPem {
  certPem: string;
  keyPem: string;
}

// The certificate library is heavy to load; a one-shot command that makes no
// HTTPS request never needs it.
const certificates = () => import('../tls/certificates.js');

/** What minting needs, loaded with the first leaf. */
interface Issuing {
  issuer: LeafIssuer;
  /** Sent after the leaf: the CA itself only when it is an intermediate (a root is the client's own anchor, RFC 8446 4.4.2). */
  chainPem: string;
}

export interface LeafCacheStats {
  hits: number;
  misses: number;
  size: number;
}

/**
 * Leaf certificates for intercepted TLS, one per host name, held as ready TLS
 * secure contexts in a bounded LRU. All leaves share one key pair (made at
 * start), so minting a leaf is one ECDSA signature rather than a key
 * generation; the leaves are short-lived and re-minted before they expire.
 * Once the issuer is loaded (the first mint), a miss is served synchronously:
 * the certificate is a template assembly plus a signature, and most of the
 * remaining cost is OpenSSL decoding the PEM into the secure context.
 */
export class LeafCache {
  private readonly entries = new Map<string, { context: SecureContext; expiresAt: number }>();
  private readonly pending = new Map<string, Promise<SecureContext>>();
  private loading: Promise<Issuing> | undefined;
  private ready: Issuing | undefined;
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
    if (this.ready) return this.mint(this.ready, host);
    const minted = this.issuing()
      .then((issuing) => this.mint(issuing, host))
      .finally(() => this.pending.delete(host));
    this.pending.set(host, minted);
    return minted;
  }

  /**
   * Mints leaves for hosts a policy names exactly, in the background, one at a
   * time, so that the first request to an allowed host does not wait for one.
   * Bounded: at most `limit` hosts per call, and never more than half the cache.
   */
  warm(hosts: Iterable<string>, limit = 100): void {
    const max = Math.floor((this.options.maxEntries ?? 1000) / 2);
    const todo: string[] = [];
    for (const host of hosts) {
      if (todo.length >= Math.min(limit, max)) break;
      if (!this.entries.has(host) && !this.pending.has(host)) todo.push(host);
    }
    const next = (): void => {
      const host = todo.shift();
      if (host === undefined) return;
      // A mint that throws (synchronously, once the issuer is ready) rejects here rather than escaping.
      void new Promise<SecureContext>((resolve) => resolve(this.get(host))).then(
        () => setImmediate(next),
        () => setImmediate(next),
      );
    };
    if (todo.length) setImmediate(next);
  }

  private mint({ issuer, chainPem }: Issuing, host: string): SecureContext {
    const validSeconds = this.options.validSeconds ?? 24 * 3600;
    const leaf = issuer.issue([host], validSeconds);
    const context = createSecureContext({ cert: leaf.certPem + chainPem, key: leaf.keyPem, minVersion: 'TLSv1.2' });
    // Renew an hour (or a tenth of the lifetime) before expiry.
    const expiresAt = Date.now() + validSeconds * 1000 - Math.min(3600_000, validSeconds * 100);
    this.entries.set(host, { context, expiresAt });
    const max = this.options.maxEntries ?? 1000;
    while (this.entries.size > max) this.entries.delete(this.entries.keys().next().value!);
    this.stats.size = this.entries.size;
    return context;
  }

  /** One key pair for every leaf of this cache, and an issuer that precomputes what leaves share. */
  private issuing(): Promise<Issuing> {
    this.loading ??= certificates().then(async ({ generateKeyPair, loadCertificateAuthority, LeafIssuer }) => {
      const ca = await loadCertificateAuthority(this.ca.certPem, this.ca.keyPem);
      const caCert = new X509Certificate(this.ca.certPem);
      this.ready = { issuer: await LeafIssuer.create(ca, await generateKeyPair()), chainPem: caCert.checkIssued(caCert) ? '' : this.ca.certPem };
      return this.ready;
    });
    return this.loading;
  }
}
