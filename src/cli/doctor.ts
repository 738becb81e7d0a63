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
import { builtRelay, RELAY_BINARY } from '../sandbox/native.js';
import { describeLocation } from '../store/connect.js';
import { controlStoreLocation, migrationStatus, openControlStore } from '../store/database.js';
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

  const relay = builtRelay();
  results.push({
    name: 'relay',
    ok: relay !== undefined,
    required: true,
    detail: relay ?? `${RELAY_BINARY} is not built`,
    fix: 'npm run build (it needs a C compiler: apt-get install gcc libc6-dev)',
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

  results.push(checkHome(home));
  results.push(await checkDatabase(home, config));
  return results;
}

function checkHome(home: string): CheckResult {
  const base = { name: 'TAGBOX_HOME', required: true, fix: `chmod 700 ${home}` };
  try {
    ensureHome(home);
    accessSync(home, constants.W_OK);
    const mode = statSync(home).mode & 0o777;
    if (mode !== 0o700) return { ...base, ok: false, detail: `${home} has mode ${mode.toString(8).padStart(4, '0')}, expected 0700` };
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
