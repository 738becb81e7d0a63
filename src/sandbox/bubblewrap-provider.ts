import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { homePaths } from '../home.js';
import { hostLayout, ROOT_RUNTIME_DIR } from './host-layout.js';
import { reapOrphanedRuntimeDirs, reapStaleExecSockets, reapStaleSandboxes } from './reaper.js';
import { prepareAlternatives } from './etc-files.js';
import { BwrapSandbox } from './bwrap-sandbox.js';
import type { BwrapHost } from './bwrap-sandbox.js';
import { isSandboxUnavailable, sandboxUnavailable } from './errors.js';
import { detectLimitMechanism, findExecutable, probeUserNamespaces } from './host-support.js';
import type { LimitMechanism } from './host-support.js';
import { detectSandboxIdentity, type SandboxIdentity } from './identity.js';
import { checkNativeParts } from './native.js';
import { nodeBinDir, systemBindArgs } from './system-binds.js';
import type { ExecHandle, ExecRequest, Sandbox, SandboxProvider, SandboxSpec } from './types.js';

export interface BubblewrapProviderOptions {
  /** TAGBOX_HOME: sandboxes live in its `sandboxes/` and it is never visible inside. */
  home: string;
  /** Force a mechanism (tests use `{ kind: 'rlimits' }`); default: what the host offers. */
  limitMechanism?: LimitMechanism;
  /** `shared` forces single-user mode (refused as root); default: a host uid of the sandbox's own where possible. */
  identity?: 'auto' | 'shared';
  /**
   * When to try bubblewrap's namespaces on their own (one extra bwrap run):
   * `now` (default) at creation; `on-failure` only when a sandbox fails to
   * start, to name the cause and its fix — a one-shot `tagbox exec` then pays
   * for one bwrap run, not two.
   */
  probe?: 'now' | 'on-failure';
}

/**
 * The local provider. Checks the host once (bubblewrap, the built relay,
 * user namespaces, cgroups) and fails with `sandbox_unavailable` — exit 125 for
 * `tagbox exec` — naming what is missing and how to fix it.
 */
export async function createBubblewrapProvider(
  options: BubblewrapProviderOptions,
): Promise<SandboxProvider & { readonly mechanism: LimitMechanism; readonly identity: SandboxIdentity }> {
  const bwrap = findExecutable('bwrap');
  if (!bwrap) throw sandboxUnavailable('bubblewrap (bwrap) is not installed; install the bubblewrap package');
  checkNativeParts();
  const identity = detectSandboxIdentity({ want: options.identity ?? 'auto' });
  if (identity.mode === 'separate' && !findExecutable('setpriv')) {
    throw sandboxUnavailable('setpriv is not installed (a sandbox drops to its own uid with it); install the util-linux package');
  }
  const checkNamespaces = () => {
    const userns = probeUserNamespaces(bwrap);
    if (!userns.ok) throw sandboxUnavailable(`${userns.reason}; fix: ${userns.fix}`);
  };
  if (options.probe !== 'on-failure') checkNamespaces();
  const layout = hostLayout(options.home, identity);
  const mechanism = options.limitMechanism ?? detectLimitMechanism();
  // What an earlier crash left behind goes first (issue 9, item 8).
  await reapStaleSandboxes(layout.sandboxes, mechanism);
  if (identity.mode === 'separate' && identity.spawnAs) await reapOrphanedRuntimeDirs(ROOT_RUNTIME_DIR, mechanism, layout.base);
  reapStaleExecSockets(layout.sockets);
  const paths = homePaths(options.home);
  const forbidden = [paths.home, paths.sandboxes, paths.sockets, layout.sandboxes, layout.sockets];
  const host: BwrapHost = {
    bwrap,
    sandboxesDir: layout.sandboxes,
    nativeDir: layout.native,
    identity,
    mechanism,
    systemBinds: systemBindArgs(forbidden),
    nodeBin: nodeBinDir(forbidden),
    alternativesDir: await prepareAlternatives(layout.alternatives).catch((error: unknown) => {
      throw sandboxUnavailable(`cannot prepare ${layout.alternatives}: ${(error as Error).message}`, error);
    }),
  };
  return {
    name: 'bubblewrap',
    mechanism: host.mechanism,
    identity,
    proxySocketPath: (name: string) => {
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,80}$/.test(name)) throw new TypeError(`proxySocketPath: "${name}" is not a plain name`);
      return join(layout.sockets, `${name}.sock`);
    },
    mountSourceDir: (name: string) => {
      if (!/^[a-z][a-z0-9-]{0,40}$/.test(name)) throw new TypeError(`mountSourceDir: "${name}" is not a plain name`);
      // Beside the sandboxes' own host files: a directory bubblewrap's user reaches, that no one else writes.
      const dir = join(dirname(layout.sandboxes), `mount-${name}`);
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      return dir;
    },
    create: (spec: SandboxSpec): Promise<Sandbox> =>
      BwrapSandbox.start(host, spec).catch((error: unknown) => {
        // A host without user namespaces fails here: say so as the probe would have.
        if (options.probe === 'on-failure' && isSandboxUnavailable(error)) checkNamespaces();
        throw error;
      }),
    exec: (sandbox: Sandbox, request: ExecRequest): ExecHandle => own(sandbox).exec(request),
    release: (sandbox: Sandbox): Promise<void> => own(sandbox).release(),
  };
}

function own(sandbox: Sandbox): BwrapSandbox {
  if (!(sandbox instanceof BwrapSandbox)) throw new TypeError(`sandbox ${sandbox.id} belongs to the ${sandbox.provider} provider`);
  return sandbox;
}
