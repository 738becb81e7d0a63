import type { VerifyResult } from './verify.js';

/**
 * A verification's result in words: the lines `tagbox audit verify` prints and
 * the console's "Verify chain" shows, or the one sentence naming what broke.
 */
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
