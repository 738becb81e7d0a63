import type { AuditCheckpointOptions } from '../audit/checkpoints.js';
import { loadSigningKey, readPublicKeys } from '../audit/signing-key.js';
import type { VerifyOptions, VerifyResult } from '../audit/verify.js';
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

export function verifyReport(result: VerifyResult): { lines: string[]; failure?: string } {
  if (!result.ok) {
    const { seq, ts, type, problem, kind } = result.broken;
    const at = `event ${seq}${type ? ` (${type}${ts ? `, ${ts}` : ''})` : ''}`;
    const message =
      kind === 'tail' ? `audit log truncated: ${problem}`
      : kind === 'external' ? `audit checkpoint mismatch: ${problem}`
      : kind === 'key' ? `audit checkpoints cannot be checked at ${at}: ${problem}`
      : `audit chain broken at ${at}: ${problem}`;
    return { lines: [], failure: message };
  }
  const lines = [`audit chain intact: ${result.events} events`];
  const latest = result.latestCheckpoint;
  lines.push(
    result.checkpoints === 0
      ? 'checkpoints: none yet'
      : `checkpoints: ${result.checkpoints} verified${latest ? `, signed by key ${latest.keyId}; the newest covers event ${latest.seq} (${latest.ts})` : ''}`,
  );
  lines.push(
    result.uncovered === 0
      ? 'every event is covered by a signed checkpoint'
      : `${result.uncovered} events after the newest checkpoint are not covered by a signed checkpoint yet (protected by the hash chain only)`,
  );
  const ext = result.external;
  if (ext) {
    lines.push(
      ext.state === 'missing' ? `external checkpoint ${ext.file}: none yet`
      : ext.state === 'matches' ? `external checkpoint ${ext.file}: event ${ext.seq}, matches`
      : ext.state === 'older' ? `external checkpoint ${ext.file}: event ${ext.seq}, matches, older than the newest in the database (written by another host, or in the same instant)`
      : `external checkpoint ${ext.file}: event ${ext.seq}, before the retention anchor (cannot be compared)`,
    );
  }
  return { lines };
}
