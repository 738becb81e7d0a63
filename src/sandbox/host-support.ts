import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';

/**
 * What this host offers the sandbox: bubblewrap, user namespaces and a
 * resource-limit mechanism. Used by `tagbox doctor` and by the bubblewrap
 * provider, so both tell the same truth.
 */

export function findExecutable(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':')) {
    const candidate = `${dir}/${name}`;
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export type UserNamespaceSupport = { ok: true } | { ok: false; reason: string; fix: string };

/** Tries the real thing: bubblewrap creating user and network namespaces. */
export function probeUserNamespaces(bwrap: string): UserNamespaceSupport {
  const result = spawnSync(
    bwrap,
    ['--unshare-all', '--die-with-parent', '--ro-bind', '/usr', '/usr', '--symlink', 'usr/bin', '/bin', '--symlink', 'usr/lib', '/lib',
      '--symlink', 'usr/lib64', '/lib64', '--proc', '/proc', '--dev', '/dev', '--', '/bin/true'],
    { encoding: 'utf8', timeout: 10_000 },
  );
  if (result.status === 0) return { ok: true };
  const detail = (result.stderr || result.error?.message || `exit ${result.status}`).trim().split('\n')[0];
  return {
    ok: false,
    reason: `bubblewrap cannot create namespaces (${detail})`,
    fix: userNamespaceFix(),
  };
}

function userNamespaceFix(): string {
  if (readSysctl('kernel/apparmor_restrict_unprivileged_userns') === '1') {
    return 'sysctl -w kernel.apparmor_restrict_unprivileged_userns=0';
  }
  if (readSysctl('kernel/unprivileged_userns_clone') === '0') return 'sysctl -w kernel.unprivileged_userns_clone=1';
  if (readSysctl('user/max_user_namespaces') === '0') return 'sysctl -w user.max_user_namespaces=15000';
  return 'enable unprivileged user namespaces in the kernel (or run inside a VM that allows them)';
}

function readSysctl(name: string): string | undefined {
  try {
    return readFileSync(`/proc/sys/${name}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

export type LimitMechanism =
  | { kind: 'cgroup2'; root: string }
  | { kind: 'cgroup1'; memory: string; pids: string; cpu?: string }
  | { kind: 'rlimits' };

/**
 * Which mechanism can enforce memory and process limits here: a writable
 * cgroup v2 hierarchy with the memory and pids controllers, writable cgroup v1
 * memory and pids hierarchies, or per-process rlimits only.
 */
export function detectLimitMechanism(): LimitMechanism {
  const v2 = '/sys/fs/cgroup';
  if (existsSync(`${v2}/cgroup.controllers`)) {
    const controllers = readFileSync(`${v2}/cgroup.controllers`, 'utf8');
    if (/\bmemory\b/.test(controllers) && /\bpids\b/.test(controllers) && usable(v2)) return { kind: 'cgroup2', root: v2 };
  }
  const memory = `${v2}/memory`;
  const pids = `${v2}/pids`;
  if (existsSync(`${memory}/memory.limit_in_bytes`) && existsSync(`${pids}/pids.max`) || existsSync(`${pids}/tasks`)) {
    if (existsSync(`${memory}/tasks`) && usable(memory) && usable(pids)) {
      const cpu = existsSync(`${v2}/cpu/tasks`) && writable(`${v2}/cpu`) ? `${v2}/cpu` : undefined;
      return { kind: 'cgroup1', memory, pids, ...(cpu ? { cpu } : {}) };
    }
  }
  return { kind: 'rlimits' };
}

/** Writable, or with a `tagbox` subtree delegated to us (privilege separation chowns it to the server). */
function usable(hierarchy: string): boolean {
  return writable(`${hierarchy}/tagbox`) || writable(hierarchy);
}

function writable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

export function describeLimitMechanism(m: LimitMechanism): string {
  switch (m.kind) {
    case 'cgroup2':
      return `cgroup v2 at ${m.root} (memory, processes, CPU) plus rlimits`;
    case 'cgroup1':
      return `cgroup v1 (memory at ${m.memory}, processes at ${m.pids}${m.cpu ? `, cpu at ${m.cpu}` : ''}) plus rlimits`;
    case 'rlimits':
      return 'rlimits only (no writable cgroup hierarchy): memory per process, not per sandbox';
  }
}
