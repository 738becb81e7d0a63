import { existsSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { destroyCgroupById } from './cgroup.js';
import type { LimitMechanism } from './host-support.js';

/**
 * What a crashed Tagbox leaves behind (issue 9, item 8): a sandbox directory
 * (its /etc, FIFOs, argv files), its cgroups and the proxy socket of a
 * `tagbox exec`. Each sandbox directory names its owner (pid and start time);
 * a provider starting up removes what belongs to owners that are gone.
 */
export const OWNER_FILE = 'owner';

/** `pid starttime`: the start time tells a live owner from a later process that got the same pid. */
export function ownerStamp(pid = process.pid): string {
  return `${pid} ${startTime(pid) ?? 0}\n`;
}

export function ownerAlive(stamp: string): boolean {
  const [pid, start] = stamp.trim().split(' ').map(Number);
  if (!pid) return false;
  const now = startTime(pid);
  return now !== undefined && now === start;
}

function startTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22, counted after the parenthesised command name (which may hold spaces).
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  } catch {
    return undefined;
  }
}

// A directory this young may belong to a sandbox still being built (its owner file not written yet).
const GRACE_MS = 60_000;

export async function reapStaleSandboxes(sandboxesDir: string, mechanism: LimitMechanism): Promise<number> {
  let reaped = 0;
  for (const entry of safeReaddir(sandboxesDir)) {
    if (!/^[0-9a-f]{16}$/.test(entry)) continue;
    const dir = join(sandboxesDir, entry);
    let stamp: string | undefined;
    try {
      stamp = readFileSync(join(dir, OWNER_FILE), 'utf8');
    } catch {
      stamp = undefined;
    }
    if (stamp !== undefined ? ownerAlive(stamp) : Date.now() - mtime(dir) < GRACE_MS) continue;
    await destroyCgroupById(mechanism, entry);
    rmSync(dir, { recursive: true, force: true });
    reaped += 1;
  }
  return reaped;
}

/** `exec-<pid>-<id>.sock` of `tagbox exec` processes that are gone. */
export function reapStaleExecSockets(socketsDir: string): number {
  let reaped = 0;
  for (const entry of safeReaddir(socketsDir)) {
    const match = /^exec-(\d+)-[0-9a-f]+\.sock$/.exec(entry);
    if (!match) continue;
    if (startTime(Number(match[1])) !== undefined) continue;
    try {
      unlinkSync(join(socketsDir, entry));
      reaped += 1;
    } catch {
      // gone meanwhile
    }
  }
  return reaped;
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function mtime(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

/**
 * As root, sandboxes' host files live in /run/tagbox/<hash of TAGBOX_HOME>:
 * those of homes that no longer exist go once no live sandbox is left in them.
 */
export async function reapOrphanedRuntimeDirs(runtimeDir: string, mechanism: LimitMechanism, own: string | undefined): Promise<void> {
  for (const entry of safeReaddir(runtimeDir)) {
    if (!/^[0-9a-f]{16}$/.test(entry)) continue;
    const base = join(runtimeDir, entry);
    if (base === own) continue;
    let home: string;
    try {
      home = readFileSync(join(base, 'home'), 'utf8').trim();
    } catch {
      continue;
    }
    if (home === '' || existsSync(home)) continue;
    await reapStaleSandboxes(join(base, 'sandboxes'), mechanism);
    if (safeReaddir(join(base, 'sandboxes')).some((name) => /^[0-9a-f]{16}$/.test(name))) continue;
    rmSync(base, { recursive: true, force: true });
  }
}
