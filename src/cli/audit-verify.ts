import type { AuditCheckpointOptions } from '../audit/checkpoints.js';
import { loadSigningKey, readPublicKeys } from '../audit/signing-key.js';
import type { VerifyOptions } from '../audit/verify.js';
import { isTagboxError } from '../errors.js';

/** `tagbox audit verify`'s flags, and its words: what it trusts, and how it reports. */
export interface VerifyFlags {
  publicKey: string[];
  /** A file; false for --no-checkpoint-file; unset (or true) for the configured one. */
  checkpointFile?: string | boolean;
  json?: boolean;
}

/**
 * Trust: the --public-key files only, when given (an auditor with the public
 * key alone); otherwise the public half of this home's signing key, read but
 * never created. Never a key from the database.
 */
export function verifyOptionsFrom(flags: VerifyFlags, defaults: AuditCheckpointOptions): VerifyOptions {
  let trusted: VerifyOptions['trusted'];
  if (flags.publicKey.length > 0) {
    trusted = readPublicKeys(flags.publicKey);
  } else {
    try {
      trusted = loadSigningKey({ file: defaults.keyFile, create: false }).key.trusted();
    } catch (error) {
      // No key yet is fine while nothing was signed; verify fails if something was.
      if (!(isTagboxError(error) && error.code === 'audit_key_missing')) throw error;
    }
  }
  const file = typeof flags.checkpointFile === 'string' ? flags.checkpointFile : flags.checkpointFile === false ? undefined : defaults.checkpointFile;
  return { ...(trusted ? { trusted } : {}), ...(file !== undefined ? { checkpointFile: file } : {}) };
}
