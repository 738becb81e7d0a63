import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * Whether an unprivileged account can reach a path: search permission on every
 * directory above it and the wanted permission on the path itself, by the
 * owner/group/other bits (what the kernel checks, short of ACLs). Privilege
 * separation needs the server and the proxy to reach Tagbox's code and home.
 */
export interface Who {
  uid: number;
  /** Primary and supplementary groups. */
  gids: number[];
}

export type Need = 'x' | 'r' | 'rx' | 'rw' | 'rwx';

export interface Blocked {
  /** The first path on the way that stops it. */
  at: string;
  mode: number;
}

export function blockedAt(who: Who, path: string, need: Need): Blocked | undefined {
  const target = resolve(path);
  const chain: string[] = [];
  for (let p = dirname(target); ; p = dirname(p)) {
    chain.unshift(p);
    if (p === dirname(p)) break;
  }
  for (const dir of chain) {
    const stop = check(who, dir, 'x');
    if (stop) return stop;
  }
  return check(who, target, need);
}

function check(who: Who, path: string, need: Need): Blocked | undefined {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    return { at: path, mode: 0 };
  }
  if (who.uid === 0) return undefined;
  const bits = stat.uid === who.uid ? (stat.mode >> 6) & 7 : who.gids.includes(stat.gid) ? (stat.mode >> 3) & 7 : stat.mode & 7;
  const wanted = (need.includes('r') ? 4 : 0) | (need.includes('w') ? 2 : 0) | (need.includes('x') ? 1 : 0);
  return (bits & wanted) === wanted ? undefined : { at: path, mode: stat.mode & 0o7777 };
}
