import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fchmodSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { failure } from '../errors.js';
import type { CaPem } from './leaf-cache.js';

/**
 * The deployment CA in TAGBOX_HOME/ca: created on first run (ECDSA P-256),
 * certificate world-readable, private key 0600 — only the proxy reads it.
 *
 * Exactly one CA is ever created, even when several processes start at once
 * on a fresh home: each builds key and certificate in a private temporary
 * directory and renames it into place. rename(2) onto a directory that is not
 * empty fails, so one process wins; the others discard theirs and load the
 * winner's. Everyone serves the CA that is on disk.
 */
export function caPaths(caDir: string) {
  return { dir: caDir, cert: join(caDir, 'ca.pem'), key: join(caDir, 'ca.key') };
}

export async function loadOrCreateDeploymentCa(caDir: string): Promise<CaPem> {
  const paths = caPaths(caDir);
  if (!existsSync(paths.cert) && !existsSync(paths.key)) await createOnce(caDir);
  return loadCa(caDir);
}

/** The CA certificate alone (what `tagbox ca cert` prints); creates the CA on first use. */
export async function deploymentCaCertificate(caDir: string): Promise<string> {
  const paths = caPaths(caDir);
  if (existsSync(paths.cert)) return loadCa(caDir).certPem;
  return (await loadOrCreateDeploymentCa(caDir)).certPem;
}

function loadCa(caDir: string): CaPem {
  const paths = caPaths(caDir);
  for (const [file, what] of [[paths.cert, 'ca.pem'], [paths.key, 'ca.key']] as const) {
    if (!existsSync(file)) {
      throw failure(`the deployment CA in ${caDir} is incomplete (${what} is missing); move the directory away to create a new CA`, 'ca_unreadable');
    }
  }
  try {
    const ca = { certPem: readFileSync(paths.cert, 'utf8'), keyPem: readFileSync(paths.key, 'utf8') };
    if (!ca.certPem.includes('BEGIN CERTIFICATE') || !ca.keyPem.includes('PRIVATE KEY')) throw new Error('not PEM');
    return ca;
  } catch (error) {
    throw failure(`cannot load the deployment CA from ${caDir}: ${(error as Error).message}`, 'ca_unreadable', error);
  }
}

/** Creates the CA unless another process already did; returns when one is on disk. */
async function createOnce(caDir: string): Promise<void> {
  const parent = dirname(caDir);
  mkdirSync(parent, { recursive: true, mode: 0o700 });
  const tmp = join(parent, `.${basename(caDir)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  mkdirSync(tmp, { mode: 0o700 });
  try {
    const { createCertificateAuthority } = await import('../tls/certificates.js');
    const ca = await createCertificateAuthority({ commonName: 'Tagbox Deployment CA' });
    const paths = caPaths(tmp);
    writeDurable(paths.key, ca.keyPem, 0o600);
    writeDurable(paths.cert, ca.certPem, 0o644);
    fsyncPath(tmp);
    try {
      // Atomic, and fails if someone else's CA is already in place.
      renameSync(tmp, caDir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
      return; // another process won: its CA is the one
    }
    fsyncPath(parent);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function writeDurable(path: string, content: string, mode: number): void {
  const fd = openSync(path, 'wx', mode);
  try {
    fchmodSync(fd, mode); // whatever the umask
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
