import { readFileSync } from 'node:fs';

/**
 * File descriptors are the proxy's hardest limit: at RLIMIT_NOFILE, accept()
 * and every upstream dial fail for everyone. The proxy reads its limit once
 * (Node raises the soft limit to the hard one at start) and keeps client
 * connections below it with a margin, refusing the rest cleanly. Each client
 * connection is budgeted two descriptors (its own and one upstream); `reserve`
 * is kept for everything else (the database, logs, listeners, idle pools).
 */

/** The soft "Max open files" limit from /proc/self/limits text; undefined if absent or unlimited. */
export function parseOpenFilesLimit(limitsText: string): number | undefined {
  const m = /^Max open files\s+(\S+)\s+/m.exec(limitsText);
  if (!m || !/^\d+$/.test(m[1]!)) return undefined;
  return Number(m[1]);
}

/** This process's open-files limit, or undefined where /proc is not available. */
export function openFilesLimit(): number | undefined {
  try {
    return parseOpenFilesLimit(readFileSync('/proc/self/limits', 'utf8'));
  } catch {
    return undefined;
  }
}

/** How many client connections fit under `limit` descriptors, keeping `reserve` free (at least 1). */
export function connectionBudget(limit: number | undefined, reserve: number): number {
  if (limit === undefined) return Number.POSITIVE_INFINITY;
  return Math.max(1, Math.floor((limit - reserve) / 2));
}
