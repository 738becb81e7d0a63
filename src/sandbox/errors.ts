import { failure, isTagboxError } from '../errors.js';
import type { TagboxError } from '../errors.js';

/**
 * The sandbox itself could not be set up (bubblewrap missing, user namespaces
 * off, cgroup not writable...). `tagbox exec` turns this into exit 125, as
 * `docker run` and `env` do, so it is never confused with the command's status.
 */
export const SANDBOX_UNAVAILABLE = 'sandbox_unavailable';

export function sandboxUnavailable(reason: string, cause?: unknown): TagboxError {
  return failure(`sandbox unavailable: ${reason}`, SANDBOX_UNAVAILABLE, cause);
}

export function isSandboxUnavailable(error: unknown): error is TagboxError {
  return isTagboxError(error) && error.code === SANDBOX_UNAVAILABLE;
}

/** The exit status of `tagbox exec` when the sandbox itself could not be set up (as `docker run` and `env` use it). */
export const EXIT_SANDBOX_UNAVAILABLE = 125;
