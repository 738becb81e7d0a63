import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LimitMechanism } from '../sandbox/host-support.js';

/**
 * The sandboxes' cgroups, delegated to the server user (the kernel's own
 * delegation model: chown of a subtree): the root launcher makes the `tagbox`
 * parent cgroup in each hierarchy, turns on the controllers it needs, and
 * gives it to the server, which then makes one child per sandbox. Nothing
 * outside that subtree becomes the server's.
 */
export function delegateCgroups(mechanism: LimitMechanism, uid: number, gid: number): void {
  const parents =
    mechanism.kind === 'cgroup2' ? [join(mechanism.root, 'tagbox')]
    : mechanism.kind === 'cgroup1' ? [join(mechanism.memory, 'tagbox'), join(mechanism.pids, 'tagbox')]
    : [];
  if (mechanism.kind === 'cgroup2') enableControllers(mechanism.root);
  for (const dir of parents) {
    mkdirSync(dir, { recursive: true });
    if (mechanism.kind === 'cgroup2') enableControllers(dir);
    chownSync(dir, uid, gid);
    // The parent's interface files: creating children and moving processes needs them.
    for (const file of ['cgroup.procs', 'cgroup.subtree_control', 'cgroup.threads', 'tasks', 'notify_on_release']) {
      if (existsSync(join(dir, file))) chownSync(join(dir, file), uid, gid);
    }
  }
}

function enableControllers(dir: string): void {
  const current = readOr(join(dir, 'cgroup.subtree_control'));
  const wanted = ['memory', 'pids'].filter((c) => !new RegExp(`\\b${c}\\b`).test(current));
  if (wanted.length > 0) writeFileSync(join(dir, 'cgroup.subtree_control'), wanted.map((c) => `+${c}`).join(' '));
}

function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
