import { existsSync } from 'node:fs';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sandboxUnavailable } from './errors.js';
import type { LimitMechanism } from './host-support.js';
import type { SandboxLimits } from './limits.js';

/**
 * One sandbox's cgroup (v1 or v2). The sandbox's first process writes its own
 * pid into `procsFiles` before it execs bubblewrap, so nothing the sandbox
 * starts is ever outside it; counters tell which limit stopped a command.
 */
export interface SandboxCgroup {
  /** `cgroup.procs` files the first process joins, one per hierarchy. */
  readonly procsFiles: string[];
  counters(): Promise<CgroupCounters>;
  /** SIGKILLs everything in the cgroup until it is empty, then removes it. */
  destroy(): Promise<void>;
}

export interface CgroupCounters {
  /** Processes killed by the OOM killer in this cgroup so far. */
  oomKills: number;
  /** Times a fork failed because of the pids limit. */
  pidsMax: number;
}

const PARENT = 'tagbox';

export async function createCgroup(mechanism: LimitMechanism, id: string, limits: SandboxLimits): Promise<SandboxCgroup | undefined> {
  try {
    switch (mechanism.kind) {
      case 'rlimits': return undefined;
      case 'cgroup2': return await createV2(mechanism.root, id, limits);
      case 'cgroup1': return await createV1(mechanism.memory, mechanism.pids, id, limits);
    }
  } catch (error) {
    throw sandboxUnavailable(`cannot set up the sandbox's cgroup (${(error as Error).message})`, error);
  }
}

async function createV2(root: string, id: string, limits: SandboxLimits): Promise<SandboxCgroup> {
  const parent = join(root, PARENT);
  await mkdir(parent, { recursive: true });
  // Controllers must be enabled on every level above the leaf.
  await enableControllers(root);
  await enableControllers(parent);
  const dir = join(parent, id);
  await mkdir(dir);
  await writeFile(join(dir, 'memory.max'), String(limits.memoryBytes));
  if (existsSync(join(dir, 'memory.swap.max'))) await writeFile(join(dir, 'memory.swap.max'), '0');
  await writeFile(join(dir, 'pids.max'), String(limits.processes));
  return {
    procsFiles: [join(dir, 'cgroup.procs')],
    counters: async () => ({
      oomKills: keyed(await readOr(join(dir, 'memory.events')), 'oom_kill'),
      pidsMax: keyed(await readOr(join(dir, 'pids.events')), 'max'),
    }),
    destroy: async () => {
      if (existsSync(join(dir, 'cgroup.kill'))) await writeFile(join(dir, 'cgroup.kill'), '1').catch(() => undefined);
      await killUntilEmpty([dir]);
    },
  };
}

/** The `tagbox` parent cgroup in each hierarchy the mechanism uses; a sandbox's cgroups are its children. */
export function parentCgroups(mechanism: LimitMechanism): string[] {
  if (mechanism.kind === 'cgroup2') return [join(mechanism.root, PARENT)];
  if (mechanism.kind === 'cgroup1') return [join(mechanism.memory, PARENT), join(mechanism.pids, PARENT)];
  return [];
}

/** Turns on the controllers the sandboxes need for the children of `dir` (cgroup v2). */
export async function enableControllers(dir: string): Promise<void> {
  const current = await readOr(join(dir, 'cgroup.subtree_control'));
  const wanted = ['memory', 'pids'].filter((c) => !new RegExp(`\\b${c}\\b`).test(current));
  if (wanted.length > 0) await writeFile(join(dir, 'cgroup.subtree_control'), wanted.map((c) => `+${c}`).join(' '));
}

async function createV1(memoryRoot: string, pidsRoot: string, id: string, limits: SandboxLimits): Promise<SandboxCgroup> {
  const memory = join(memoryRoot, PARENT, id);
  const pids = join(pidsRoot, PARENT, id);
  await mkdir(memory, { recursive: true });
  await mkdir(pids, { recursive: true });
  await writeFile(join(memory, 'memory.limit_in_bytes'), String(limits.memoryBytes));
  // Without swap accounting the limit could be dodged by swapping out.
  if (existsSync(join(memory, 'memory.memsw.limit_in_bytes'))) {
    await writeFile(join(memory, 'memory.memsw.limit_in_bytes'), String(limits.memoryBytes));
  }
  await writeFile(join(pids, 'pids.max'), String(limits.processes));
  return {
    procsFiles: [join(memory, 'cgroup.procs'), join(pids, 'cgroup.procs')],
    counters: async () => ({
      oomKills: keyed(await readOr(join(memory, 'memory.oom_control')), 'oom_kill'),
      pidsMax: keyed(await readOr(join(pids, 'pids.events')), 'max'),
    }),
    destroy: () => killUntilEmpty([memory, pids]),
  };
}

/** Kills every pid listed, re-reading until the cgroups are empty (forks may race the first pass), then rmdirs. */
async function killUntilEmpty(dirs: string[]): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    let remaining = 0;
    for (const dir of dirs) {
      const pids = (await readOr(join(dir, 'cgroup.procs'))).split('\n').filter(Boolean).map(Number);
      remaining += pids.length;
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    if (remaining === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  for (const dir of dirs) {
    for (let attempt = 0; attempt < 50; attempt++) {
      try {
        await rmdir(dir);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') break;
        // EBUSY while the last exits are being reaped
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
  }
}

async function readOr(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return '';
  }
}

/** Reads `key N` from a flat-keyed cgroup file. */
function keyed(text: string, key: string): number {
  const match = new RegExp(`^${key} (\\d+)$`, 'm').exec(text);
  return match ? Number(match[1]) : 0;
}

/**
 * Kills and removes a sandbox's cgroups by its id, whatever state they are in:
 * what a crashed Tagbox left behind. Nothing there is not an error.
 */
export async function destroyCgroupById(mechanism: LimitMechanism, id: string): Promise<void> {
  const present = parentCgroups(mechanism).map((parent) => join(parent, id)).filter((dir) => existsSync(dir));
  if (present.length === 0) return;
  if (mechanism.kind === 'cgroup2' && existsSync(join(present[0]!, 'cgroup.kill'))) {
    await writeFile(join(present[0]!, 'cgroup.kill'), '1').catch(() => undefined);
  }
  await killUntilEmpty(present);
}
