import type { Command } from 'commander';
import { accessSync, constants, statSync } from 'node:fs';
import { loadConfig } from '../config/load.js';
import { describeError, isTagboxError } from '../errors.js';
import { ensureHome, homePaths, resolveHome } from '../home.js';
import {
  describeLimitMechanism,
  detectLimitMechanism,
  findExecutable,
  probeUserNamespaces,
} from '../sandbox/host-support.js';
import { describeEnforcement } from '../sandbox/limits.js';
import { checkNativeParts } from '../sandbox/native.js';
import { childReadables, describePlan, privsepPlan } from '../privsep/plan.js';
import { describeLocation } from '../store/connect.js';
import { controlStoreLocation, migrationStatus, openControlStore } from '../store/database.js';
import { lookupGroup, SHARED_GROUP } from '../system/accounts.js';
import type { GlobalOptions } from './context.js';

export interface CheckResult {
  name: string;
  ok: boolean;
  required: boolean;
  detail: string;
  fix?: string;
}

const MIN_NODE = [20, 19] as const;

/**
 * One line per check: `ok` or what is missing and the command that fixes it.
 * Exit 0 when every required part is there, 1 when one is missing, 2 on invalid config.
 */
export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('check that this machine can run Tagbox')
    .action(async (_opts, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const results = await runChecks(globals);
      for (const r of results) {
        const status = r.ok ? 'ok     ' : r.required ? 'MISSING' : 'warn   ';
        process.stdout.write(`${status} ${r.name}: ${r.detail}${!r.ok && r.fix ? ` — fix: ${r.fix}` : ''}\n`);
      }
      const missing = results.filter((r) => r.required && !r.ok);
      process.stdout.write(missing.length === 0 ? 'all required parts are present\n' : `${missing.length} required part(s) missing\n`);
      process.exitCode = missing.length === 0 ? 0 : 1;
    });
}

export async function runChecks(globals: GlobalOptions): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  // Invalid config is a usage error (exit 2) and stops the run: nothing else can be trusted.
  const home = resolveHome(globals.home);
  const paths = homePaths(home);
  const { config } = loadConfig({ file: globals.config ?? paths.config, explicit: globals.config !== undefined });

  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  const nodeOk = major > MIN_NODE[0] || (major === MIN_NODE[0] && minor >= MIN_NODE[1]);
  results.push({
    name: 'node',
    ok: nodeOk,
    required: true,
    detail: nodeOk ? `v${process.versions.node}` : `v${process.versions.node} is too old; need ${MIN_NODE.join('.')} or newer`,
    fix: 'install Node.js 20.19+ (https://nodejs.org or your distribution)',
  });

  const bwrap = findExecutable('bwrap');
  results.push({
    name: 'bubblewrap',
    ok: bwrap !== undefined,
    required: true,
    detail: bwrap ?? 'bwrap not found on PATH',
    fix: 'apt-get install bubblewrap',
  });

  let native: string | undefined;
  let nativeProblem = '';
  try {
    native = checkNativeParts();
  } catch (error) {
    nativeProblem = (error as Error).message.replace(/^sandbox unavailable: /, '').replace(/; fix: .*$/, '');
  }
  results.push({
    name: 'relay',
    ok: native !== undefined,
    required: true,
    detail: native ? `the relay and the seccomp profiles are built (${native})` : nativeProblem,
    fix: 'npm run build (it needs a C compiler and libseccomp: apt-get install gcc libc6-dev libseccomp-dev)',
  });

  if (bwrap) {
    const userns = probeUserNamespaces(bwrap);
    results.push({
      name: 'user namespaces',
      ok: userns.ok,
      required: true,
      detail: userns.ok ? 'bubblewrap can create user, pid and network namespaces' : userns.reason,
      ...(userns.ok ? {} : { fix: userns.fix }),
    });
  } else {
    results.push({ name: 'user namespaces', ok: false, required: true, detail: 'cannot test without bubblewrap', fix: 'apt-get install bubblewrap' });
  }

  results.push(...(await checkConfinement(home)));

  const limits = detectLimitMechanism();
  const enforcement = Object.entries(describeEnforcement(limits))
    .map(([limit, how]) => `${limit} by ${how.replace(/ \(.*\)$/, '')}`)
    .join('; ');
  results.push({
    name: 'resource limits',
    ok: limits.kind !== 'rlimits',
    required: false,
    detail: `${describeLimitMechanism(limits)} — ${enforcement}`,
    fix: 'run Tagbox where it may create cgroups (root, or a delegated cgroup v2 subtree)',
  });

  results.push(checkPrivsep(home, globals));
  results.push(checkHome(home));
  results.push(await checkDatabase(home, config));
  return results;
}

/**
 * Runs a throwaway sandbox and reports, one line each, who it is on the host,
 * whether its seccomp profiles are loaded and whether host-global /proc files
 * stay read-only inside (issue 9's confinement, measured, not assumed).
 */
async function checkConfinement(home: string): Promise<CheckResult[]> {
  let report;
  try {
    ensureHome(home);
    report = await (await import('../sandbox/probe.js')).probeConfinement(home);
  } catch (error) {
    const detail = `no sandbox could be made to check it: ${describeError(error).replace(/^sandbox unavailable: /, '')}`;
    const fix = 'npm run setup (as root it also creates the tagbox users), then tagbox doctor again';
    return ['sandbox user', 'seccomp', '/proc/sys'].map((name) => ({ name, ok: false, required: true, detail, fix }));
  }
  const separate = report.identity.mode === 'separate';
  return [
    {
      name: 'sandbox user',
      ok: separate && report.uid === 1000,
      // Single-user mode works, but is weaker: a warning, not a failure.
      required: false,
      detail: report.identityLine,
      fix: 'start Tagbox as root after `npm run setup` (privilege separation), or give this user a subordinate uid and gid range (usermod --add-subuids N-M --add-subgids N-M USER) and install uidmap',
    },
    {
      name: 'seccomp',
      ok: report.seccompFilters >= 2,
      required: true,
      detail: report.seccompFilters >= 2
        ? `loaded: the sandbox's profile and the command profile (${report.seccompFilters} filters on a command)`
        : `a command in a sandbox runs with ${report.seccompFilters} seccomp filter(s), expected 2`,
      fix: 'npm run build (the profiles are built with libseccomp: apt-get install libseccomp-dev)',
    },
    {
      name: '/proc/sys',
      ok: report.writableProc.length === 0,
      required: true,
      detail: report.writableProc.length === 0
        ? 'read-only inside sandboxes (core_pattern, modprobe, sysrq-trigger, drop_caches checked)'
        : `writable inside a sandbox: ${report.writableProc.join(', ')}`,
      fix: 'report this: a sandbox must never write host-global /proc files',
    },
  ];
}

/** Whether `tagbox up` would run as three users here, or in the weaker single-user mode. */
function checkPrivsep(home: string, globals: GlobalOptions): CheckResult {
  const name = 'privilege separation';
  try {
    ensureHome(home);
    const plan = privsepPlan({ home, readable: childReadables(globals.config) });
    return {
      name,
      ok: plan.mode === 'separated',
      // Single-user mode works: a warning, as weaker; only a root start that cannot separate is a failure.
      required: false,
      detail: describePlan(plan),
      fix: 'start Tagbox as root after `npm run setup`',
    };
  } catch (error) {
    return { name, ok: false, required: true, detail: describeError(error).replace(/; fix: .*$/, ''), fix: /fix: (.*)$/.exec(describeError(error))?.[1] ?? 'npm run setup' };
  }
}

function checkHome(home: string): CheckResult {
  const base = { name: 'TAGBOX_HOME', required: true, fix: `chmod 700 ${home}` };
  try {
    ensureHome(home);
    accessSync(home, constants.W_OK);
    const stat = statSync(home);
    const mode = stat.mode & 0o7777;
    // Privilege separation's layout: root's, shared with the tagbox group only, sticky.
    if (mode === 0o1770 && stat.uid === 0 && stat.gid === lookupGroup(SHARED_GROUP)?.gid) {
      return { ...base, ok: true, detail: `${home} (privilege separation: root:${SHARED_GROUP}, mode 1770)` };
    }
    if ((mode & 0o777) !== 0o700) return { ...base, ok: false, detail: `${home} has mode ${mode.toString(8).padStart(4, '0')}, expected 0700` };
    return { ...base, ok: true, detail: `${home} (writable, mode 0700)` };
  } catch (error) {
    return { ...base, ok: false, detail: `${home} is not writable: ${describeError(error)}`, fix: `mkdir -p -m 700 ${home}` };
  }
}

async function checkDatabase(home: string, config: Parameters<typeof controlStoreLocation>[1]): Promise<CheckResult> {
  const location = controlStoreLocation(home, config);
  const base = { name: 'database', required: true };
  let store;
  try {
    store = await openControlStore(location, { migrate: false });
    const status = await migrationStatus(store);
    if (status.pending.length > 0) {
      return { ...base, ok: false, detail: `${describeLocation(location)}: ${status.pending.length} migration(s) pending`, fix: 'tagbox migrate' };
    }
    return { ...base, ok: true, detail: `${describeLocation(location)} (reachable, migrated)` };
  } catch (error) {
    const message = isTagboxError(error) ? error.message : describeError(error);
    return {
      ...base,
      ok: false,
      detail: message,
      fix: location.dialect === 'postgres' ? 'check TAGBOX_DATABASE_URL and that PostgreSQL is running' : `check that ${home} is writable`,
    };
  } finally {
    await store?.close();
  }
}
