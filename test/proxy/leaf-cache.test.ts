import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import { LeafCache } from '../../src/proxy/leaf-cache.js';
import { createCertificateAuthority, type CertificateAuthority } from '../../src/tls/certificates.js';

/** What a TLS client sees when the cache serves `host`. */
async function peerFor(cache: LeafCache, ca: { certPem: string }, host: string): Promise<X509Certificate> {
  const context = await cache.get(host);
  const server = createServer({ SNICallback: (_n, cb) => cb(null, context) });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const socket: TLSSocket = await new Promise((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, servername: host, ca: ca.certPem }, () => resolve(s));
      s.on('error', reject);
    });
    const cert = socket.getPeerX509Certificate()!;
    socket.destroy();
    return cert;
  } finally {
    server.close();
  }
}

describe('leaf cache', () => {
  let ca: CertificateAuthority;
  beforeAll(async () => {
    ca = await createCertificateAuthority({ commonName: 'Leaf Cache Test CA' });
  });

  it('serves a leaf for the host that a client verifies against the CA', async () => {
    const cache = new LeafCache(ca);
    const cert = await peerFor(cache, ca, 'api.example.test');
    expect(cert.checkHost('api.example.test')).toBe('api.example.test');
    expect(cert.checkIssued(new X509Certificate(ca.certPem))).toBe(true);
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    // Short-lived: a day, not years.
    expect(Date.parse(cert.validTo) - Date.now()).toBeLessThanOrEqual(24 * 3600_000 + 60_000);
  });

  it('sends an intermediate CA with each leaf, so a client that trusts only the root verifies it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tagbox-intermediate-'));
    const f = (name: string) => join(dir, name);
    const openssl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    writeFileSync(f('ca.ext'), 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n');
    openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'root.key']);
    openssl(['req', '-x509', '-new', '-key', 'root.key', '-out', 'root.pem', '-days', '2', '-subj', '/CN=Corp Root', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']);
    openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'mid.key']);
    openssl(['pkcs8', '-topk8', '-nocrypt', '-in', 'mid.key', '-out', 'mid.p8']);
    openssl(['req', '-new', '-key', 'mid.key', '-out', 'mid.csr', '-subj', '/CN=Corp Proxy Intermediate']);
    openssl(['x509', '-req', '-in', 'mid.csr', '-CA', 'root.pem', '-CAkey', 'root.key', '-CAcreateserial', '-out', 'mid.pem', '-days', '2', '-extfile', 'ca.ext']);
    const cache = new LeafCache({ certPem: readFileSync(f('mid.pem'), 'utf8'), keyPem: readFileSync(f('mid.p8'), 'utf8') });
    const cert = await peerFor(cache, { certPem: readFileSync(f('root.pem'), 'utf8') }, 'svc.corp.test');
    expect(cert.checkHost('svc.corp.test')).toBe('svc.corp.test');
    expect(cert.checkIssued(new X509Certificate(readFileSync(f('mid.pem'))))).toBe(true);
  });

  it('mints once for concurrent first requests, then hits', async () => {
    const cache = new LeafCache(ca);
    const contexts = await Promise.all([cache.get('a.test'), cache.get('a.test'), cache.get('a.test')]);
    expect(new Set(contexts).size).toBe(1);
    await cache.get('a.test');
    expect(cache.stats).toMatchObject({ misses: 1, hits: 1, size: 1 });
  });

  it('stays within its bound, evicting the least recently used', async () => {
    const cache = new LeafCache(ca, { maxEntries: 2 });
    await cache.get('one.test');
    await cache.get('two.test');
    await cache.get('one.test'); // one is now the most recent
    await cache.get('three.test');
    expect(cache.stats.size).toBe(2);
    const misses = cache.stats.misses;
    await cache.get('one.test');
    expect(cache.stats.misses).toBe(misses); // kept
    await cache.get('two.test');
    expect(cache.stats.misses).toBe(misses + 1); // evicted, minted again
  });

  it('warms the hosts it is given in the background, bounded', async () => {
    const cache = new LeafCache(ca, { maxEntries: 10 });
    cache.warm(['w1.test', 'w2.test', 'w3.test', 'w4.test', 'w5.test', 'w6.test', 'w7.test'], 100);
    for (let i = 0; i < 200 && cache.stats.size < 5; i++) await new Promise((r) => setTimeout(r, 25));
    // Never more than half the cache.
    await new Promise((r) => setTimeout(r, 100));
    expect(cache.stats.size).toBe(5);
    const before = cache.stats.misses;
    await cache.get('w1.test');
    expect(cache.stats.misses).toBe(before);
  });
});
