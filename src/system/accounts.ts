import { readFileSync } from 'node:fs';

/**
 * Host accounts, read from the local files (system users made by `useradd
 * --system` live there). Tagbox's privilege separation uses three of them when
 * started as root; see docs/SECURITY.md.
 */
export const SYSTEM_USERS = {
  /** The server (control plane); also launches sandboxes and owns their user namespaces. */
  server: 'tagbox',
  /** The Agent Proxy: the only one that reads the vault and the master key. */
  proxy: 'tagbox-proxy',
  /** What commands in a sandbox run as on the host. */
  sandbox: 'tagbox-sandbox',
} as const;

/** A group that both the server and the proxy belong to: the shared database and socket directory. */
export const SHARED_GROUP = 'tagbox';

export interface Account {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export function lookupUser(name: string, passwd = readOr('/etc/passwd')): Account | undefined {
  for (const line of passwd.split('\n')) {
    const [user, , uid, gid, , home] = line.split(':');
    if (user === name && uid !== undefined && gid !== undefined) return { name, uid: Number(uid), gid: Number(gid), home: home ?? '/' };
  }
  return undefined;
}

export function userById(uid: number, passwd = readOr('/etc/passwd')): Account | undefined {
  for (const line of passwd.split('\n')) {
    const [user, , id, gid, , home] = line.split(':');
    if (id !== undefined && Number(id) === uid && user && gid !== undefined) return { name: user, uid, gid: Number(gid), home: home ?? '/' };
  }
  return undefined;
}

export function lookupGroup(name: string, group = readOr('/etc/group')): { gid: number; members: string[] } | undefined {
  for (const line of group.split('\n')) {
    const [g, , gid, members] = line.split(':');
    if (g === name && gid !== undefined) return { gid: Number(gid), members: (members ?? '').split(',').filter(Boolean) };
  }
  return undefined;
}

export interface SubordinateRange {
  start: number;
  count: number;
}

/** Ranges of /etc/subuid or /etc/subgid delegated to a user (by name or uid), as newuidmap reads them. */
export function subordinateRanges(file: '/etc/subuid' | '/etc/subgid', user: Account, text = readOr(file)): SubordinateRange[] {
  const ranges: SubordinateRange[] = [];
  for (const line of text.split('\n')) {
    const [owner, start, count] = line.trim().split(':');
    if (!owner || start === undefined || count === undefined) continue;
    if (owner !== user.name && owner !== String(user.uid)) continue;
    const s = Number(start);
    const c = Number(count);
    if (Number.isInteger(s) && Number.isInteger(c) && s > 0 && c > 0) ranges.push({ start: s, count: c });
  }
  return ranges;
}

export function inRanges(id: number, ranges: SubordinateRange[]): boolean {
  return ranges.some((r) => id >= r.start && id < r.start + r.count);
}

function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
