import { isAbsolute, normalize } from 'node:path';
import { invalidInput } from '../errors.js';
import type { ReadOnlyMount } from './types.js';

/** Where read-only mounts may appear inside a sandbox: nowhere a system path lives. */
export const MOUNT_ROOT = '/opt/tagbox';

const SAFE_TARGET = /^\/opt\/tagbox(\/[A-Za-z0-9._-]+)+$/;

/**
 * bwrap options for read-only binds under /opt/tagbox. A target outside it,
 * with `..`, or a relative source is refused: a mount must never shadow a
 * system path, the proxy socket or the workspace, and never be writable.
 */
export function mountArgs(mounts: ReadOnlyMount[]): string[] {
  if (mounts.length === 0) return [];
  const args: string[] = ['--dir', '/opt', '--dir', MOUNT_ROOT];
  const made = new Set(['/opt', MOUNT_ROOT]);
  for (const mount of mounts) {
    const target = normalize(mount.target);
    if (target !== mount.target || !SAFE_TARGET.test(target) || target.split('/').includes('..')) {
      throw invalidInput(`sandbox mount target ${JSON.stringify(mount.target)}: expected a path under ${MOUNT_ROOT}/`, 'invalid_mount');
    }
    if (!isAbsolute(mount.source) || normalize(mount.source) !== mount.source) {
      throw invalidInput(`sandbox mount source ${JSON.stringify(mount.source)}: expected an absolute, normalised host path`, 'invalid_mount');
    }
    // Parents 0755 (bwrap would make them 0700, unreadable to the agent).
    const parts = target.split('/').filter(Boolean);
    for (let i = 3; i < parts.length; i++) {
      const dir = `/${parts.slice(0, i).join('/')}`;
      if (!made.has(dir)) args.push('--dir', dir);
      made.add(dir);
    }
    args.push('--ro-bind', mount.source, target);
  }
  return args;
}
