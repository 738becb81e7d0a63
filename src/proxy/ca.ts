import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { failure } from '../errors.js';
import type { CaPem } from './leaf-cache.js';

/**
 * The deployment CA in TAGBOX_HOME/ca: created on first run (ECDSA P-256),
 * certificate world-readable, private key 0600 — only the proxy reads it.
 */
export function caPaths(caDir: string) {
  return { dir: caDir, cert: join(caDir, 'ca.pem'), key: join(caDir, 'ca.key') };
}

export async function loadOrCreateDeploymentCa(caDir: string): Promise<CaPem> {
  const paths = caPaths(caDir);
  if (existsSync(paths.cert) && existsSync(paths.key)) {
    try {
      const ca = { certPem: readFileSync(paths.cert, 'utf8'), keyPem: readFileSync(paths.key, 'utf8') };
      if (!ca.certPem.includes('BEGIN CERTIFICATE') || !ca.keyPem.includes('PRIVATE KEY')) throw new Error('not PEM');
      return ca;
    } catch (error) {
      throw failure(`cannot load the deployment CA from ${caDir}: ${(error as Error).message}`, 'ca_unreadable', error);
    }
  }
  mkdirSync(caDir, { recursive: true, mode: 0o700 });
  const { createCertificateAuthority } = await import('../tls/certificates.js');
  const ca = await createCertificateAuthority({ commonName: 'Tagbox Deployment CA' });
  // Write the key first, atomically and 0600, so a crash never leaves a certificate without its key.
  writeAtomic(paths.key, ca.keyPem, 0o600);
  writeAtomic(paths.cert, ca.certPem, 0o644);
  return { certPem: ca.certPem, keyPem: ca.keyPem };
}

/** The CA certificate alone (what `tagbox ca cert` prints); creates the CA on first use. */
export async function deploymentCaCertificate(caDir: string): Promise<string> {
  const paths = caPaths(caDir);
  if (existsSync(paths.cert)) return readFileSync(paths.cert, 'utf8');
  return (await loadOrCreateDeploymentCa(caDir)).certPem;
}

function writeAtomic(path: string, content: string, mode: number): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}
