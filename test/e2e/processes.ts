import { readdirSync, readFileSync } from 'node:fs';

/**
 * The host's processes as /proc shows them, for assertions about what a
 * sandbox left running. Each carries its start time, so a pid reused by a
 * later process is never mistaken for the one that was seen.
 */
export interface HostProcess {
  pid: number;
  ppid: number;
  /** Clock ticks since boot (field 22 of /proc/PID/stat). */
  start: number;
  /** argv joined with spaces. */
  cmdline: string;
}

export function processes(): HostProcess[] {
  const out: HostProcess[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // After the parenthesised command name (which may hold spaces): state, ppid, ..., starttime (22nd field).
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
      out.push({ pid: Number(entry), ppid: Number(fields[1]), start: Number(fields[19]), cmdline });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

export function processesMatching(pattern: RegExp): HostProcess[] {
  return processes().filter((p) => pattern.test(p.cmdline));
}

/** The process and everything below it. */
export function treeOf(pid: number): HostProcess[] {
  const all = processes();
  const found = all.filter((p) => p.pid === pid);
  for (let i = 0; i < found.length; i++) for (const p of all) if (p.ppid === found[i]!.pid) found.push(p);
  return found;
}

/** Whether this very process (pid and start time) still exists. */
export function stillAlive(p: HostProcess): boolean {
  try {
    const stat = readFileSync(`/proc/${p.pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]) === p.start;
  } catch {
    return false;
  }
}
