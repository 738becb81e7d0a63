import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sandboxUnavailable } from './errors.js';

/**
 * The sandbox's native parts, built by `npm run build` (scripts/build-native.sh)
 * into native/build/ of this checkout — the same relative path from src/sandbox/
 * (tsx, tests) and from dist/sandbox/ (the built CLI): the seccomp profiles
 * (made with libseccomp) and the one-process relay (native/relay.c). Bound
 * read-only into every sandbox at /run/tagbox/native.
 */
export const NATIVE_DIR = fileURLToPath(new URL('../../native/build', import.meta.url));

export const NATIVE_FILES = {
  outerSeccomp: 'seccomp-outer.bpf',
  commandSeccomp: 'seccomp-command.bpf',
  relay: 'tagbox-relay',
} as const;

/** Fails closed: a sandbox without its seccomp profiles or its relay is not built. */
export function checkNativeParts(dir = NATIVE_DIR): string {
  for (const [part, file] of Object.entries(NATIVE_FILES)) {
    try {
      accessSync(join(dir, file), part === 'relay' ? constants.X_OK : constants.R_OK);
    } catch {
      const what = part === 'relay' ? "the sandbox's relay to the proxy" : "the sandbox's seccomp profile";
      throw sandboxUnavailable(`${what} is not built (${join(dir, file)}); fix: npm run build (it needs gcc and libseccomp-dev: npm run setup)`);
    }
  }
  return dir;
}

/** The relay binary of this checkout (tests run it on the host). */
export const RELAY_BINARY = join(NATIVE_DIR, NATIVE_FILES.relay);
