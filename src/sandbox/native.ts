import { accessSync, constants } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sandboxUnavailable } from './errors.js';

/**
 * The sandbox's native parts, built by `npm run build` (scripts/build-native.sh)
 * into native/build/ at the root of the installation: the seccomp profiles
 * (made with libseccomp) and the relay. The directory is bound read-only into
 * every sandbox at /run/tagbox/native.
 */
export const NATIVE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'native', 'build');

export const NATIVE_FILES = {
  outerSeccomp: 'seccomp-outer.bpf',
  commandSeccomp: 'seccomp-command.bpf',
} as const;

/** Fails closed: a sandbox without its seccomp profiles is not built. */
export function checkNativeParts(dir = NATIVE_DIR): string {
  for (const file of Object.values(NATIVE_FILES)) {
    try {
      accessSync(join(dir, file), constants.R_OK);
    } catch {
      throw sandboxUnavailable(`the sandbox's seccomp profile ${join(dir, file)} is missing; fix: npm run build (needs gcc and libseccomp-dev: npm run setup)`);
    }
  }
  return dir;
}
