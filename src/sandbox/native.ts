import { accessSync, constants } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * native/build/ of this checkout, where `npm run build` puts the native parts
 * (scripts/build-native.sh). The same relative path from src/sandbox/ (tsx,
 * tests) and from dist/sandbox/ (the built CLI).
 */
export const NATIVE_BUILD_DIR = fileURLToPath(new URL('../../native/build', import.meta.url));

/** The sandbox's one-process relay to its proxy socket (native/relay.c). */
export const RELAY_BINARY = `${NATIVE_BUILD_DIR}/tagbox-relay`;

/** The relay binary when it is built and executable, else undefined. */
export function builtRelay(): string | undefined {
  try {
    accessSync(RELAY_BINARY, constants.X_OK);
    return RELAY_BINARY;
  } catch {
    return undefined;
  }
}
