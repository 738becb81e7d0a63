import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { homePaths } from '../home.js';
import { prepareAlternatives } from './etc-files.js';
import { BwrapSandbox } from './bwrap-sandbox.js';
import type { BwrapHost } from './bwrap-sandbox.js';
import { sandboxUnavailable } from './errors.js';
import { detectLimitMechanism, findExecutable, probeUserNamespaces } from './host-support.js';
import type { LimitMechanism } from './host-support.js';
import { builtRelay, RELAY_BINARY } from './native.js';
import { nodeBinDir, systemBindArgs } from './system-binds.js';
import type { ExecHandle, ExecRequest, Sandbox, SandboxProvider, SandboxSpec } from './types.js';

export interface BubblewrapProviderOptions {
  /** TAGBOX_HOME: sandboxes live in its `sandboxes/` and it is never visible inside. */
  home: string;
  /** Force a mechanism (tests use `{ kind: 'rlimits' }`); default: what the host offers. */
  limitMechanism?: LimitMechanism;
}

/**
 * The local provider. Checks the host once (bubblewrap, the built relay,
 * user namespaces, cgroups) and fails with `sandbox_unavailable` — exit 125 for
 * `tagbox exec` — naming what is missing and how to fix it.
 */
export async function createBubblewrapProvider(options: BubblewrapProviderOptions): Promise<SandboxProvider & { readonly mechanism: LimitMechanism }> {
  const bwrap = findExecutable('bwrap');
  if (!bwrap) throw sandboxUnavailable('bubblewrap (bwrap) is not installed; install the bubblewrap package');
  if (!builtRelay()) throw sandboxUnavailable(`the sandbox's relay to the proxy is not built (${RELAY_BINARY}); run npm run build`);
  const userns = probeUserNamespaces(bwrap);
  if (!userns.ok) throw sandboxUnavailable(`${userns.reason}; fix: ${userns.fix}`);
  const paths = homePaths(options.home);
  const forbidden = [paths.home, paths.sandboxes, paths.sockets];
  mkdirSync(paths.sandboxes, { recursive: true, mode: 0o700 });
  const host: BwrapHost = {
    bwrap,
    sandboxesDir: paths.sandboxes,
    mechanism: options.limitMechanism ?? detectLimitMechanism(),
    systemBinds: systemBindArgs(forbidden),
    nodeBin: nodeBinDir(forbidden),
    alternativesDir: await prepareAlternatives(join(paths.sandboxes, '.alternatives')).catch((error: unknown) => {
      throw sandboxUnavailable(`cannot prepare ${paths.sandboxes}: ${(error as Error).message}`, error);
    }),
  };
  return {
    name: 'bubblewrap',
    mechanism: host.mechanism,
    create: (spec: SandboxSpec): Promise<Sandbox> => BwrapSandbox.start(host, spec),
    exec: (sandbox: Sandbox, request: ExecRequest): ExecHandle => own(sandbox).exec(request),
    release: (sandbox: Sandbox): Promise<void> => own(sandbox).release(),
  };
}

function own(sandbox: Sandbox): BwrapSandbox {
  if (!(sandbox instanceof BwrapSandbox)) throw new TypeError(`sandbox ${sandbox.id} belongs to the ${sandbox.provider} provider`);
  return sandbox;
}
