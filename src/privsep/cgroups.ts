import { chownSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { enableControllers, parentCgroups } from '../sandbox/cgroup.js';
import type { LimitMechanism } from '../sandbox/host-support.js';

/**
 * The sandboxes' cgroups, delegated to the server user (the kernel's own
 * delegation model: chown of a subtree): the root launcher makes the `tagbox`
 * parent cgroup in each hierarchy, turns on the controllers it needs, and
 * gives it to the server, which then makes one child per sandbox. Nothing
 * outside that subtree becomes the server's.
 */
export async function delegateCgroups(mechanism: LimitMechanism, uid: number, gid: number): Promise<void> {
  if (mechanism.kind === 'cgroup2') await enableControllers(mechanism.root);
  for (const dir of parentCgroups(mechanism)) {
    mkdirSync(dir, { recursive: true });
    if (mechanism.kind === 'cgroup2') await enableControllers(dir);
    chownSync(dir, uid, gid);
    // The parent's interface files: creating children and moving processes needs them.
    for (const file of ['cgroup.procs', 'cgroup.subtree_control', 'cgroup.threads', 'tasks', 'notify_on_release']) {
      if (existsSync(join(dir, file))) chownSync(join(dir, file), uid, gid);
    }
  }
}
