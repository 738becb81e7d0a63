import { SYSTEM_USERS, inRanges, lookupUser, subordinateRanges, userById, type Account } from '../system/accounts.js';
import { sandboxUnavailable } from './errors.js';
import { findExecutable } from './host-support.js';

/**
 * Who a sandbox is on the host. Never root, and where the host allows it never
 * the user that runs Tagbox either.
 * - `separate`: the sandbox's agent (uid 1000 inside) is a host uid of its own:
 *   the `tagbox-sandbox` user, or the first of Tagbox's subordinate uids. The
 *   launcher — Tagbox itself, or the unprivileged `tagbox` user when Tagbox runs
 *   as root — runs bubblewrap and owns the sandbox's user namespace, whose map
 *   also holds uid 0 -> the launcher for bubblewrap's set-up; the sandbox's
 *   first process drops from 0 to 1000 before anything of the sandbox's own
 *   runs, so nothing inside stays 0. The sandbox can signal, trace or read
 *   nothing of Tagbox's, and shares no per-user kernel state with it (keyrings,
 *   process counts). As root the maps are written directly; unprivileged, by
 *   the setuid newuidmap/newgidmap (package uidmap), within /etc/subuid and
 *   /etc/subgid. (Bubblewrap itself never runs as host root: as root it would
 *   cover parts of /proc in a way that stops the per-command sandbox from
 *   mounting a /proc of its own.)
 * - `shared`: single-user mode, when Tagbox runs unprivileged without a
 *   subordinate range: the sandbox is Tagbox's own uid. Weaker; doctor says so.
 */
export type SandboxIdentity =
  | {
      mode: 'separate';
      /** Runs bubblewrap and owns the user namespace: Tagbox itself, or the `tagbox` user when Tagbox is root. */
      launcher: IdentityIds;
      /** Set when the launcher is not this process's own uid (Tagbox runs as root). */
      spawnAs?: IdentityIds;
      /** Host ids of the sandbox's agent (uid 1000 inside). */
      sandbox: IdentityIds;
      maps: 'direct' | 'newuidmap';
    }
  | { mode: 'shared'; launcher: IdentityIds; reason: string };

export interface IdentityIds {
  uid: number;
  gid: number;
  name?: string;
}

export interface IdentityOptions {
  /** `shared` forces single-user mode (refused when running as root). Default: the strongest the host offers. */
  want?: 'auto' | 'shared';
}

export function detectSandboxIdentity(options: IdentityOptions = {}): SandboxIdentity {
  const uid = process.getuid!();
  const gid = process.getgid!();
  if (uid === 0) return rootIdentity(options.want);
  const me: Account = userById(uid) ?? { name: String(uid), uid, gid, home: '/' };
  const launcher = { uid, gid, name: me.name };
  if (options.want === 'shared') return { mode: 'shared', launcher, reason: 'single-user mode was asked for' };

  const subuids = subordinateRanges('/etc/subuid', me);
  const subgids = subordinateRanges('/etc/subgid', me);
  if (subuids.length === 0 || subgids.length === 0) {
    return { mode: 'shared', launcher, reason: `user ${me.name} has no subordinate uid and gid range (/etc/subuid, /etc/subgid)` };
  }
  if (!findExecutable('newuidmap') || !findExecutable('newgidmap')) {
    return { mode: 'shared', launcher, reason: 'newuidmap/newgidmap are not installed (package uidmap)' };
  }
  // A privilege-separated server has the tagbox-sandbox user delegated to it; anyone else, a range of their own.
  const dedicated = lookupUser(SYSTEM_USERS.sandbox);
  const useDedicated = dedicated !== undefined && inRanges(dedicated.uid, subuids) && inRanges(dedicated.gid, subgids);
  const sandbox = useDedicated
    ? { uid: dedicated.uid, gid: dedicated.gid, name: dedicated.name }
    : { uid: subuids[0]!.start, gid: subgids[0]!.start };
  return { mode: 'separate', launcher, sandbox, maps: 'newuidmap' };
}

function rootIdentity(want: IdentityOptions['want']): SandboxIdentity {
  if (want === 'shared') throw sandboxUnavailable('single-user sandboxes are refused when Tagbox runs as root: they would run as root');
  const launcher = lookupUser(SYSTEM_USERS.server);
  const sandbox = lookupUser(SYSTEM_USERS.sandbox);
  if (!launcher || !sandbox) {
    const missing = [launcher ? undefined : SYSTEM_USERS.server, sandbox ? undefined : SYSTEM_USERS.sandbox].filter(Boolean);
    throw sandboxUnavailable(
      `Tagbox runs as root and sandboxes never do, but the system user${missing.length > 1 ? 's' : ''} ${missing.join(' and ')} ` +
        `do${missing.length > 1 ? '' : 'es'} not exist; fix: run \`npm run setup\` (or scripts/create-users.sh) as root`,
    );
  }
  if ([launcher.uid, launcher.gid, sandbox.uid, sandbox.gid].includes(0) || launcher.uid === sandbox.uid) {
    throw sandboxUnavailable(`the users ${SYSTEM_USERS.server} and ${SYSTEM_USERS.sandbox} must be distinct and not root`);
  }
  const ids = (a: Account) => ({ uid: a.uid, gid: a.gid, name: a.name });
  return { mode: 'separate', launcher: ids(launcher), spawnAs: ids(launcher), sandbox: ids(sandbox), maps: 'direct' };
}

/** One line for `tagbox doctor` and the docs. */
export function describeIdentity(identity: SandboxIdentity): string {
  if (identity.mode === 'shared') {
    return `single-user mode (weaker): sandboxes run as Tagbox's own uid ${identity.launcher.uid} (${identity.launcher.name}) because ${identity.reason}`;
  }
  const who = identity.sandbox.name ? `${identity.sandbox.uid} (${identity.sandbox.name})` : `${identity.sandbox.uid} (subordinate uid of ${identity.launcher.name})`;
  return `sandboxes run as host uid ${who}, never root nor Tagbox's own uid`;
}
