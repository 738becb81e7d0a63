import { createPublicKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadOrCreateDeploymentCa } from '../../src/proxy/ca.js';
import { runTagbox } from '../helpers/cli.js';

/**
 * The deployment CA is created exactly once, even when several processes
 * start together on a fresh TAGBOX_HOME: every one of them ends up with the
 * CA that is on disk (a loser of the race must never serve leaves from a CA
 * that never reached the disk).
 */
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function freshHome(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tagbox-ca-race-'));
  dirs.push(dir);
  return join(dir, 'home');
}

function expectMatchesKeyOnDisk(home: string, certPem: string) {
  const keyPem = readFileSync(join(home, 'ca', 'ca.key'), 'utf8');
  const fromCert = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  const fromKey = createPublicKey(keyPem).export({ type: 'spki', format: 'der' });
  expect(Buffer.compare(fromCert, fromKey)).toBe(0);
  expect(readFileSync(join(home, 'ca', 'ca.pem'), 'utf8')).toBe(certPem);
  expect(statSync(join(home, 'ca', 'ca.key')).mode & 0o777).toBe(0o600);
}

describe('the deployment CA under concurrent first start', () => {
  it('N `tagbox ca cert` processes on one fresh home all print the same certificate, and it matches the key on disk', async () => {
    const home = freshHome();
    const runs = await Promise.all(Array.from({ length: 8 }, () => runTagbox(['ca', 'cert'], { env: { TAGBOX_HOME: home } })));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const certs = new Set(runs.map((r) => r.stdout));
    expect(certs.size).toBe(1);
    const [cert] = certs;
    expect(cert).toContain('-----BEGIN CERTIFICATE-----');
    expectMatchesKeyOnDisk(home, cert!);
    // No temporary directories are left next to it.
    expect(readdirSync(home).filter((n) => n.includes('.tmp'))).toEqual([]);
  });

  it('in one process, concurrent loads return the one CA on disk', async () => {
    const home = freshHome();
    const cas = await Promise.all(Array.from({ length: 6 }, () => loadOrCreateDeploymentCa(join(home, 'ca'))));
    expect(new Set(cas.map((c) => c.certPem)).size).toBe(1);
    expect(new Set(cas.map((c) => c.keyPem)).size).toBe(1);
    expectMatchesKeyOnDisk(home, cas[0]!.certPem);
    // Later starts load it, never replace it.
    expect((await loadOrCreateDeploymentCa(join(home, 'ca'))).certPem).toBe(cas[0]!.certPem);
  });

  it('a CA directory left incomplete is an error naming what is missing, not silently replaced', async () => {
    const home = freshHome();
    const ca = await loadOrCreateDeploymentCa(join(home, 'ca'));
    rmSync(join(home, 'ca', 'ca.pem'));
    await expect(loadOrCreateDeploymentCa(join(home, 'ca'))).rejects.toThrow(/deployment CA in .* is incomplete \(ca\.pem is missing\)/);
    expect(readFileSync(join(home, 'ca', 'ca.key'), 'utf8')).toBe(ca.keyPem);
  });
});
