/**
 * Host memory of a server's sandboxes: each direct child of the server-daemon
 * is one sandbox's process tree (bwrap, its init, the agent shell, the relay).
 * Counted by PSS, so pages the sandboxes share are counted once between them.
 */
import { childrenOf, memoryOf, processTable, subtree } from './proc-tree.js';

export interface SandboxMemory {
  sandboxes: number;
  pss: number;
  rss: number;
  /** How many processes of each name, e.g. "bwrap x200". */
  kinds: string;
}

/** The server's sandbox trees now, less those whose root pid is in `before`. */
export function sandboxMemory(serverPid: number, before: Set<number>): SandboxMemory {
  const table = processTable();
  const roots = childrenOf(table, serverPid).filter((p) => !before.has(p.pid));
  let pss = 0;
  let rss = 0;
  const kinds = new Map<string, number>();
  for (const root of roots) {
    for (const pid of subtree(table, root.pid)) {
      const m = memoryOf(pid);
      pss += m.pss;
      rss += m.rss;
      const comm = table.get(pid)?.comm ?? '?';
      kinds.set(comm, (kinds.get(comm) ?? 0) + 1);
    }
  }
  return { sandboxes: roots.length, pss, rss, kinds: [...kinds].map(([k, n]) => `${k} x${n}`).join(', ') };
}

/** Root pids of the server's sandboxes now. */
export function sandboxRoots(serverPid: number): Set<number> {
  return new Set(childrenOf(processTable(), serverPid).map((p) => p.pid));
}
