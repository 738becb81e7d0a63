import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { chmod, copyFile, mkdir, readdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The sandbox's /etc, written fresh into a per-sandbox host directory and
 * bound read-only. Nothing of the host's /etc is bound: only the files below,
 * generated or copied from a fixed list of files that never hold secrets.
 */

export const SANDBOX_USER = { name: 'agent', uid: 1000, gid: 1000, home: '/home/agent' } as const;
export const SANDBOX_HOSTNAME = 'tagbox';
/** Where the CA bundle (system roots + deployment CA) lives inside. */
export const CA_BUNDLE_PATH = '/etc/ssl/certs/ca-certificates.crt';

const SYSTEM_ROOTS = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];

// Public, static system files that tools expect; copied, never bound.
const COPIED = ['ld.so.cache', 'ld.so.conf', 'services', 'protocols', 'ssl/openssl.cnf', 'localtime'];

export async function writeEtc(dir: string, caCertPem: string): Promise<void> {
  await mkdir(join(dir, 'ssl/certs'), { recursive: true });
  const { name, uid, gid, home } = SANDBOX_USER;
  await writeFile(join(dir, 'passwd'), `${name}:x:${uid}:${gid}:${name}:${home}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`);
  await writeFile(join(dir, 'group'), `${name}:x:${gid}:\nnogroup:x:65534:\n`);
  await writeFile(join(dir, 'hostname'), `${SANDBOX_HOSTNAME}\n`);
  await writeFile(join(dir, 'hosts'), `127.0.0.1\tlocalhost ${SANDBOX_HOSTNAME}\n::1\tlocalhost ip6-localhost ip6-loopback\n`);
  // No nameserver: names resolve only through the proxy, which does its own DNS.
  await writeFile(join(dir, 'resolv.conf'), '# no DNS inside the sandbox; use the HTTP proxy at 127.0.0.1:3128\n');
  await writeFile(join(dir, 'nsswitch.conf'), 'passwd: files\ngroup: files\nshadow: files\nhosts: files\nnetworks: files\nprotocols: files\nservices: files\n');
  await writeFile(join(dir, CA_BUNDLE_PATH.slice('/etc/'.length)), caBundle(caCertPem));
  await symlink('certs/ca-certificates.crt', join(dir, 'ssl/cert.pem'));
  for (const file of COPIED) {
    const source = join('/etc', file);
    if (!isRegularFile(source)) continue;
    await mkdir(join(dir, file, '..'), { recursive: true });
    await copyFile(source, join(dir, file));
  }
  // Mount point for the shared, read-only alternatives directory (see prepareAlternatives).
  await mkdir(join(dir, 'alternatives'));
  // Readable by the sandbox's own uid whatever the umask (its directory keeps the host out).
  await makeWorldReadable(dir);
}

async function makeWorldReadable(dir: string): Promise<void> {
  await chmod(dir, 0o755);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await makeWorldReadable(path);
    else if (entry.isFile()) await chmod(path, 0o644);
  }
}

function caBundle(caCertPem: string): string {
  const roots = SYSTEM_ROOTS.find((path) => existsSync(path));
  const system = roots ? readFileSync(roots, 'utf8') : '';
  const extra = caCertPem.trim();
  return `${system.trimEnd()}\n\n# Tagbox deployment CA\n${extra}\n`;
}

/**
 * Debian reaches many commands (awk, editor, python...) through /etc/alternatives
 * symlinks: hundreds of them, so they are copied once per host into `dir` (then
 * bound read-only into every sandbox) rather than per sandbox. Returns `dir`,
 * or undefined when the host has no alternatives.
 */
export async function prepareAlternatives(dir: string): Promise<string | undefined> {
  const source = '/etc/alternatives';
  if (!existsSync(source)) return undefined;
  if (existsSync(dir)) return dir;
  const staging = `${dir}.${process.pid}.${Date.now()}`;
  await mkdir(staging, { recursive: true, mode: 0o755 });
  await Promise.all(readdirSync(source).map(async (entry) => {
    const path = join(source, entry);
    if (lstatSync(path).isSymbolicLink()) await symlink(readlinkSync(path), join(staging, entry));
  }));
  try {
    await rename(staging, dir);
  } catch {
    // another process prepared it first
    await rm(staging, { recursive: true, force: true });
  }
  return dir;
}

// Follows symlinks (localtime is one): the content is copied, never a link into the host's /etc.
function isRegularFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
