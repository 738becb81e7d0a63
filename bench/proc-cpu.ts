/**
 * CPU time and resident memory of host processes from /proc, for the proxy
 * bench's per-process figures: utime+stime of /proc/PID/stat (in clock ticks,
 * converted to microseconds) and VmRSS of /proc/PID/status, summed over a set
 * of pids (a process tree: squid's helpers, a CLI's children).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { processTable, subtree } from './proc-tree.js';

/** Clock ticks per second (USER_HZ), read once; 100 on every usual Linux. */
export const CLOCK_TICKS = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 });
  const n = Number(r.stdout?.trim());
  return Number.isInteger(n) && n > 0 ? n : 100;
})();

/** utime+stime of one process in microseconds (0 when it is gone). */
export function cpuMicros(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after comm (which may hold spaces) start past the last ')': state is [0], utime [11], stime [12].
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** Summed CPU of several processes, in microseconds. */
export const cpuOf = (pids: readonly number[]): number => pids.reduce((sum, pid) => sum + cpuMicros(pid), 0);

/** VmRSS of one process in bytes (0 when it is gone). */
export function rssBytes(pid: number): number {
  try {
    return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

export const rssOfTree = (pid: number): number => treePids(pid).reduce((sum, p) => sum + rssBytes(p), 0);

/** The pid and its descendants now. */
export const treePids = (pid: number): number[] => subtree(processTable(), pid);
