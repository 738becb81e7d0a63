import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { failure } from '../errors.js';
import { SHARED_GROUP, SYSTEM_USERS, inRanges, lookupGroup, lookupUser, subordinateRanges, userById, type Account } from '../system/accounts.js';
import { blockedAt, type Who } from './reach.js';

/**
 * How `tagbox up` splits itself (issue 9, item 2), OpenSSH-style:
 * - `separated` (started as root): the server runs as `tagbox`, the Agent
 *   Proxy as `tagbox-proxy` — the only user that can read the master key and
 *   the vault — and sandboxes as `tagbox-sandbox`. The root process only
 *   launches and supervises them; it serves nothing.
 * - `single-user` (started unprivileged): all three run as that user; the
 *   boundaries between them are the code's, not the OS's. Weaker, and said so.
 */
export type PrivsepPlan =
  | {
      mode: 'separated';
      server: Account;
      proxy: Account;
      sandbox: Account;
      /** The group the server and the proxy share (database, socket directory). */
      gid: number;
      /** TAGBOX_HOME with symlinks resolved: the children cannot follow a link through /root. */
      home: string;
    }
  | { mode: 'single-user'; user: string; reason: string; home: string };

export interface PlanInput {
  home: string;
  /** Paths the children must read (directories and programs: and enter or run): the installation, node, the config file. */
  readable: Array<{ path: string; need: 'r' | 'rx' }>;
}

/** The installation (bin/, dist/, native/build) the children run from. */
export const INSTALL_DIR = fileURLToPath(new URL('../../', import.meta.url));

/** What the children must read: the installation, node, and an explicit config file. */
export function childReadables(configFile?: string): PlanInput['readable'] {
  return [
    { path: INSTALL_DIR, need: 'rx' },
    { path: realpathSync(process.execPath), need: 'rx' },
    ...(configFile ? [{ path: configFile, need: 'r' as const }] : []),
  ];
}

export function privsepPlan(input: PlanInput): PrivsepPlan {
  const uid = process.getuid!();
  if (uid !== 0) {
    const user = userById(uid)?.name ?? String(uid);
    return { mode: 'single-user', user, home: input.home, reason: `Tagbox was started as ${user}, not as root` };
  }
  const server = lookupUser(SYSTEM_USERS.server);
  const proxy = lookupUser(SYSTEM_USERS.proxy);
  const sandbox = lookupUser(SYSTEM_USERS.sandbox);
  const group = lookupGroup(SHARED_GROUP);
  const fix = 'run `npm run setup` (or scripts/create-users.sh) as root';
  if (!server || !proxy || !sandbox || !group) {
    const missing = [!server && SYSTEM_USERS.server, !proxy && SYSTEM_USERS.proxy, !sandbox && SYSTEM_USERS.sandbox, !group && `group ${SHARED_GROUP}`].filter(Boolean);
    throw failure(`privilege separation: started as root, but ${missing.join(', ')} do not exist; fix: ${fix}`, 'privsep_unavailable');
  }
  if (new Set([0, server.uid, proxy.uid, sandbox.uid]).size !== 4) {
    throw failure(`privilege separation: ${SYSTEM_USERS.server}, ${SYSTEM_USERS.proxy} and ${SYSTEM_USERS.sandbox} must be distinct users, none of them root`, 'privsep_unavailable');
  }
  if (server.gid !== group.gid || proxy.gid !== group.gid) {
    throw failure(`privilege separation: ${SYSTEM_USERS.server} and ${SYSTEM_USERS.proxy} must have ${SHARED_GROUP} as their group; fix: ${fix}`, 'privsep_unavailable');
  }
  if (sandbox.gid === group.gid || group.members.includes(sandbox.name)) {
    throw failure(`privilege separation: ${SYSTEM_USERS.sandbox} must not be in the group ${SHARED_GROUP}`, 'privsep_unavailable');
  }
  if (!inRanges(sandbox.uid, subordinateRanges('/etc/subuid', server)) || !inRanges(sandbox.gid, subordinateRanges('/etc/subgid', server))) {
    throw failure(`privilege separation: ${SYSTEM_USERS.sandbox} is not delegated to ${SYSTEM_USERS.server} in /etc/subuid and /etc/subgid; fix: ${fix}`, 'privsep_unavailable');
  }
  const home = realpathSync(input.home);
  for (const who of [server, proxy]) {
    const as: Who = { uid: who.uid, gids: [who.gid] };
    // The home itself is made theirs; what is above it must let them through.
    const stop = blockedAt(as, home, 'x') ?? undefined;
    if (stop && stop.at !== home) {
      throw failure(
        `privilege separation: ${who.name} cannot reach TAGBOX_HOME ${home}: ${stop.at} is mode ${stop.mode.toString(8)}; ` +
          'fix: set TAGBOX_HOME to a directory outside it, e.g. TAGBOX_HOME=/var/lib/tagbox (as root, `npm run setup` links ~/.tagbox there)',
        'privsep_unavailable',
      );
    }
    for (const { path, need } of input.readable) {
      const blocked = blockedAt(as, path, need);
      if (blocked) {
        throw failure(
          `privilege separation: ${who.name} cannot read ${path} (${blocked.at} is mode ${blocked.mode.toString(8)}); ` +
            'fix: install Tagbox (and Node) where system users can read them, e.g. /opt/tagbox, or start Tagbox as an unprivileged user (single-user mode)',
          'privsep_unavailable',
        );
      }
    }
  }
  return { mode: 'separated', server, proxy, sandbox, gid: group.gid, home };
}

export function describePlan(plan: PrivsepPlan): string {
  return plan.mode === 'separated'
    ? `on: the server runs as ${plan.server.name}, the Agent Proxy as ${plan.proxy.name} (the only one that reads the vault and the master key), sandboxes as ${plan.sandbox.name}`
    : `off, single-user mode (weaker): the server and the Agent Proxy both run as ${plan.user}, so the OS does not keep the server from the vault — ${plan.reason}`;
}
