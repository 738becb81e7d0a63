import { createHash } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { homePaths } from '../home.js';
import type { SandboxIdentity } from './identity.js';
import { NATIVE_DIR } from './native.js';

/**
 * Where a provider keeps its sandboxes' host-side files (each sandbox's /etc
 * and control FIFOs), the proxy sockets bound into them, and the native parts
 * they get. Bubblewrap runs as the launcher and must reach all of it by path:
 * - Tagbox unprivileged: inside TAGBOX_HOME (sandboxes/, run/), as always.
 * - Tagbox as root (the launcher is the `tagbox` user): TAGBOX_HOME may sit
 *   where that user cannot go (/root/.tagbox), so they live in
 *   /run/tagbox/<hash of TAGBOX_HOME>, a directory of the launcher's, 0700;
 *   the native parts are copied there too.
 * The top directory is private (0700); what is inside is readable by the
 * sandbox's own uid, which sees only what is bound into it.
 */
export interface HostLayout {
  /** The directory holding all of it, when it is not TAGBOX_HOME. */
  base?: string;
  /** Per-sandbox directories. */
  sandboxes: string;
  /** Where to listen for a sandbox's proxy socket. */
  sockets: string;
  /** The seccomp profiles and the relay, as bound into sandboxes. */
  native: string;
  /** The host-wide copy of /etc/alternatives. */
  alternatives: string;
}

export const ROOT_RUNTIME_DIR = '/run/tagbox';

export function hostLayout(home: string, identity: SandboxIdentity): HostLayout {
  const paths = homePaths(home);
  const spawnAs = identity.mode === 'separate' ? identity.spawnAs : undefined;
  if (!spawnAs) {
    mkdirSync(paths.sandboxes, { recursive: true, mode: 0o700 });
    mkdirSync(paths.sockets, { recursive: true, mode: 0o700 });
    return { sandboxes: paths.sandboxes, sockets: paths.sockets, native: NATIVE_DIR, alternatives: join(paths.sandboxes, '.alternatives') };
  }
  // The home must exist: a runtime directory whose home is gone is reaped at the next start.
  mkdirSync(home, { recursive: true, mode: 0o700 });
  mkdirSync(ROOT_RUNTIME_DIR, { recursive: true, mode: 0o755 });
  chmodSync(ROOT_RUNTIME_DIR, 0o755);
  const base = join(ROOT_RUNTIME_DIR, createHash('sha256').update(home).digest('hex').slice(0, 16));
  mkdirSync(base, { recursive: true, mode: 0o700 });
  chownSync(base, spawnAs.uid, spawnAs.gid);
  chmodSync(base, 0o700);
  // Which home this belongs to, so that a later start can remove it once that home is gone.
  writeFileSync(join(base, 'home'), `${home}\n`, { mode: 0o644 });
  const layout = { base, sandboxes: join(base, 'sandboxes'), sockets: join(base, 'run'), native: join(base, 'native'), alternatives: join(base, '.alternatives') };
  for (const dir of [layout.sandboxes, layout.sockets, layout.native]) {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    chmodSync(dir, 0o755);
  }
  copyNativeParts(layout.native);
  return layout;
}

/** Copies what changed, each file replaced atomically (a sandbox being built may be reading the old one). */
function copyNativeParts(to: string): void {
  for (const name of readdirSync(NATIVE_DIR)) {
    const from = join(NATIVE_DIR, name);
    const source = statSync(from);
    if (!source.isFile()) continue;
    const target = join(to, name);
    if (existsSync(target)) {
      const current = statSync(target);
      if (current.size === source.size && current.mtimeMs >= source.mtimeMs) continue;
    }
    const tmp = `${target}.${process.pid}.tmp`;
    copyFileSync(from, tmp);
    chmodSync(tmp, source.mode & 0o111 ? 0o755 : 0o644);
    renameSync(tmp, target);
  }
}
