/**
 * Host processes as /proc shows them, for the benchmarks' memory figures:
 * who is whose child, and what each one costs (PSS shares every page among
 * the processes that map it, so a sum of PSS is what they cost together).
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcessInfo {
  pid: number;
  ppid: number;
  comm: string;
  args: string;
  /** Start time in clock ticks since boot: with the pid, it names one process (pids are reused). */
  start: number;
}

/** Every process now, by pid (those that exit while being read are left out). */
export function processTable(): Map<number, ProcessInfo> {
  const table = new Map<number, ProcessInfo>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // comm may hold spaces and parentheses: the fields after it start past the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(fields[1]);
      const start = Number(fields[19]);
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim();
      table.set(Number(entry), { pid: Number(entry), ppid, comm, args, start });
    } catch {
      // gone meanwhile
    }
  }
  return table;
}

export function childrenOf(table: Map<number, ProcessInfo>, pid: number): ProcessInfo[] {
  return [...table.values()].filter((p) => p.ppid === pid);
}

/** The pid and all its descendants, parents first. */
export function subtree(table: Map<number, ProcessInfo>, pid: number): number[] {
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const next = queue.shift()!;
    out.push(next);
    for (const child of childrenOf(table, next)) queue.push(child.pid);
  }
  return out;
}

/** Whether that very process (pid and start time) still exists. */
export function stillRunning(p: ProcessInfo): boolean {
  try {
    const stat = readFileSync(`/proc/${p.pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]) === p.start;
  } catch {
    return false;
  }
}

/** Pss and Rss of one process in bytes (0 when it is gone). */
export function memoryOf(pid: number): { pss: number; rss: number } {
  try {
    const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? 0);
    return { pss: kib('Pss') * 1024, rss: kib('Rss') * 1024 };
  } catch {
    return { pss: 0, rss: 0 };
  }
}

/** VmRSS of one process in bytes. */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
}

export function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(2);
}

/** SIGKILLs every child that still runs and whatever it started, deepest first. */
export function killChildren(children: ReadonlyArray<{ pid?: number | undefined; exitCode: number | null; signalCode: NodeJS.Signals | null }>): void {
  const table = processTable();
  for (const c of children) {
    if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) continue;
    for (const pid of subtree(table, c.pid).reverse()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
}
