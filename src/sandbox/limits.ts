import { invalidInput } from '../errors.js';
import type { LimitMechanism } from './host-support.js';

/** Resource limits of one sandbox. Sizes in bytes, times in the unit named. */
export interface SandboxLimits {
  /** Memory of the whole sandbox (cgroups), or data segment per process (rlimits). Includes its tmpfs files under cgroups. */
  memoryBytes: number;
  /** Processes and threads of the whole sandbox (cgroups), or per user (rlimits). */
  processes: number;
  /** CPU time per process (RLIMIT_CPU): SIGXCPU, then SIGKILL a second later. */
  cpuSeconds: number;
  /** Wall clock per command, unless the exec asks for another timeout. */
  wallMs: number;
  /** stdout + stderr per command. */
  outputBytes: number;
  /** Size of /workspace (a tmpfs of that size). */
  diskBytes: number;
  /** Size of each of /tmp, /home/agent and /dev/shm. */
  tmpBytes: number;
}

export type LimitName = 'memory' | 'processes' | 'cpu time' | 'wall clock' | 'output' | 'disk';

const MiB = 1024 * 1024;

/** Enough for builds and test suites; small enough that a runaway command cannot hurt the host. */
export const DEFAULT_LIMITS: SandboxLimits = {
  memoryBytes: 1024 * MiB,
  processes: 256,
  cpuSeconds: 600,
  wallMs: 10 * 60_000,
  outputBytes: 10 * MiB,
  diskBytes: 1024 * MiB,
  tmpBytes: 256 * MiB,
};

export function resolveLimits(overrides: Partial<SandboxLimits> = {}): SandboxLimits {
  const limits = { ...DEFAULT_LIMITS };
  for (const [key, value] of Object.entries(overrides) as [keyof SandboxLimits, number | undefined][]) {
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw invalidInput(`sandbox limit ${key}: expected a positive integer, got ${String(value)}`, 'invalid_limit');
    }
    limits[key] = value;
  }
  return limits;
}

/** Which mechanism enforces each limit, for the sandbox's metadata and `tagbox doctor`. */
export function describeEnforcement(mechanism: LimitMechanism): Record<LimitName, string> {
  const cgroup = mechanism.kind === 'rlimits' ? undefined : mechanism.kind === 'cgroup2' ? 'cgroup v2' : 'cgroup v1';
  return {
    memory: cgroup ? `${cgroup} memory controller (whole sandbox, OOM kill)` : 'RLIMIT_DATA per process (allocation fails)',
    processes: cgroup ? `${cgroup} pids controller (whole sandbox, fork fails)` : 'RLIMIT_NPROC per user (not enforced when the host runs as root)',
    'cpu time': 'RLIMIT_CPU per process (SIGXCPU)',
    'wall clock': 'host timer per command (SIGKILL of its pid namespace)',
    output: 'host byte count per command (SIGKILL of its pid namespace)',
    disk: 'size-limited tmpfs for /workspace, /tmp, /home/agent, /dev/shm (ENOSPC)',
  };
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * MiB && bytes % (1024 * MiB) === 0) return `${bytes / (1024 * MiB)} GiB`;
  if (bytes >= MiB) return `${Math.round((bytes / MiB) * 10) / 10} MiB`;
  if (bytes >= 1024) return `${Math.round((bytes / 1024) * 10) / 10} KiB`;
  return `${bytes} bytes`;
}

/** The value of one limit in words, for the message a stopped command gets. */
export function describeLimitValue(limit: LimitName, limits: SandboxLimits, timeoutMs?: number): string {
  switch (limit) {
    case 'memory': return formatBytes(limits.memoryBytes);
    case 'processes': return `${limits.processes} processes`;
    case 'cpu time': return `${limits.cpuSeconds} s of CPU`;
    case 'wall clock': return `${(timeoutMs ?? limits.wallMs) / 1000} s`;
    case 'output': return formatBytes(limits.outputBytes);
    case 'disk': return formatBytes(limits.diskBytes);
  }
}
