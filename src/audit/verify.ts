import type { ControlStore } from '../store/database.js';
import { ChainWalker, GENESIS_HASH, type ChainLink } from './chain.js';
import { checkpointSignatureProblem, fromRow, type Checkpoint, type TrustedKeys } from './checkpoint.js';
import { readCheckpointFile } from './checkpoint-file.js';
import { PAGE, pages } from './pages.js';

/**
 * `tagbox audit verify`, in code: everything stored about the audit log is
 * checked against what an attacker without the signing key cannot forge.
 *
 * 1. The retention anchor (where pruning left the chain's start) must be
 *    covered by a signed anchor checkpoint: moving it by hand is tampering.
 * 2. Every event links to the one before, hashes to its stored hash, and every
 *    column of its row matches its hashed JSON (chain.ts).
 * 3. Every checkpoint is signed by a trusted key (never one from the database)
 *    and names the hash the chain has at its seq: a chain rewritten and
 *    recomputed no longer matches the checkpoints after the rewrite.
 * 4. No checkpoint lies beyond the last event: deleting the tail is caught by
 *    the checkpoints that covered it —
 * 5. — and, if those were deleted too, by the external checkpoint file: its
 *    checkpoint must be signed, lie within the chain and match it, and not be
 *    newer than the newest checkpoint in the database.
 *
 * Events after the newest checkpoint are protected by the chain alone (an
 * attacker can rewrite them and recompute); `uncovered` says how many.
 */
export interface VerifyOptions {
  /** Public keys checkpoints must be signed by. Without any, a log with checkpoints fails (they cannot be checked). */
  trusted?: TrustedKeys;
  /** The external checkpoint file to compare with; unset: no comparison. */
  checkpointFile?: string;
}

export type ProblemKind = 'event' | 'checkpoint' | 'anchor' | 'tail' | 'external' | 'key';

export interface VerifyProblem {
  /** The event the problem is at (for the external file: the event its checkpoint names). */
  seq: number;
  problem: string;
  kind: ProblemKind;
  ts?: string;
  type?: string;
}

export interface VerifySummary {
  /** Retained events checked. */
  events: number;
  /** The last event's seq (the anchor's when every event was pruned; 0 for an empty log). */
  head: number;
  /** The chain starts after this event (0: nothing was ever pruned). */
  anchorSeq: number;
  /** Checkpoints checked. */
  checkpoints: number;
  latestCheckpoint?: { seq: number; ts: string; keyId: string };
  /** Events after the newest checkpoint: protected by the chain only. */
  uncovered: number;
  external?: { file: string; state: 'missing' | 'matches' | 'older' | 'before-anchor'; seq?: number };
}

export type VerifyResult = ({ ok: true } & VerifySummary) | ({ ok: false; broken: VerifyProblem } & VerifySummary);

export async function verifyAuditLog(store: ControlStore, options: VerifyOptions = {}): Promise<VerifyResult> {
  const db = store.db;
  const anchorRow = await db.selectFrom('audit_anchor').select(['seq', 'hash']).executeTakeFirst();
  const start = anchorRow ? { seq: Number(anchorRow.seq), hash: anchorRow.hash } : { seq: 0, hash: GENESIS_HASH };
  const external = options.checkpointFile === undefined ? undefined : readCheckpointFile(options.checkpointFile);
  const externalSeq = external?.state === 'present' ? external.checkpoint.seq : undefined;

  const summary: VerifySummary = { events: 0, head: start.seq, anchorSeq: start.seq, checkpoints: 0, uncovered: 0 };
  let covered = start.seq;
  let newestInDb = 0;
  const fail = (broken: VerifyProblem): VerifyResult => ({ ok: false, broken, ...summary, uncovered: Math.max(0, summary.head - covered) });
  const signatureOf = (cp: Checkpoint): string | null =>
    options.trusted && options.trusted.size > 0
      ? checkpointSignatureProblem(cp, options.trusted)
      : 'cannot be checked: no audit public key (give --public-key FILE, or run where the signing key is)';

  const checkpoints = pages(async (after) =>
    (await db.selectFrom('audit_checkpoints').selectAll().where('seq', '>', after).orderBy('seq', 'asc').orderBy('kind', 'asc').limit(PAGE).execute()).map(fromRow),
  );
  let next = await checkpoints.next();
  const advance = async (cp: Checkpoint) => {
    summary.checkpoints += 1;
    newestInDb = Math.max(newestInDb, cp.seq);
    if (cp.kind === 'head') summary.latestCheckpoint = { seq: cp.seq, ts: cp.ts, keyId: cp.keyId };
    next = await checkpoints.next();
  };

  // 1. Checkpoints at or before the chain's start: only the anchor's own.
  let anchorCovered = !anchorRow;
  let stray: VerifyProblem | undefined;
  while (next !== undefined && next.seq <= start.seq) {
    const cp = next;
    if (cp.kind === 'anchor' && cp.seq === start.seq) {
      const bad = signatureOf(cp);
      if (bad) return fail({ seq: cp.seq, kind: bad.startsWith('cannot') ? 'key' : 'anchor', problem: `the anchor checkpoint ${bad}` });
      if (cp.hash !== start.hash) return fail({ seq: cp.seq, kind: 'anchor', problem: 'the retention anchor does not match its signed checkpoint: the anchor was moved by hand' });
      anchorCovered = true;
    } else if (!(cp.kind === 'head' && cp.seq === start.seq && cp.hash === start.hash)) {
      stray ??= { seq: cp.seq, kind: 'checkpoint', problem: `a ${cp.kind} checkpoint at event ${cp.seq} lies before the start of the chain (after event ${start.seq})` };
    }
    await advance(cp);
  }
  if (!anchorCovered) {
    return fail({ seq: start.seq, kind: 'anchor', problem: `the retention anchor (the chain starts after event ${start.seq}) is not covered by a signed anchor checkpoint: it was moved or set by hand` });
  }
  if (stray) return fail(stray);
  covered = start.seq;

  // 2 and 3. The chain, with each checkpoint checked where it lies.
  const walker = new ChainWalker(start);
  let externalHash: string | undefined;
  const events = pages((after) =>
    db
      .selectFrom('audit_events')
      .select(['seq', 'ts', 'type', 'outcome', 'actor', 'session_id', 'channel_id', 'data', 'prev_hash', 'hash'])
      .where('seq', '>', after)
      .orderBy('seq', 'asc')
      .limit(PAGE)
      .execute(),
    start.seq,
  );
  for (let link = await events.next(); link !== undefined; link = await events.next()) {
    const broken = walker.check(link as ChainLink);
    if (broken) return fail({ ...broken, kind: 'event', ts: link.ts, type: link.type });
    summary.events += 1;
    summary.head = Number(link.seq);
    if (summary.head === externalSeq) externalHash = link.hash;
    while (next !== undefined && next.seq === summary.head) {
      const cp = next;
      const at = { seq: cp.seq, ts: link.ts, type: link.type };
      const bad = signatureOf(cp);
      if (bad) return fail({ ...at, kind: bad.startsWith('cannot') ? 'key' : 'checkpoint', problem: `the checkpoint at this event ${bad}` });
      if (cp.kind !== 'head') return fail({ ...at, kind: 'anchor', problem: `an anchor checkpoint here, but the chain starts after event ${start.seq}: the retention anchor was moved back or deleted` });
      if (cp.hash !== link.hash) {
        return fail({ ...at, kind: 'checkpoint', problem: `the chain does not match the signed checkpoint at this event: events after ${covered === 0 ? 'the start' : `event ${covered}`} were rewritten and the chain recomputed` });
      }
      covered = cp.seq;
      await advance(cp);
    }
  }

  // 4. Nothing signed beyond the end.
  if (next !== undefined) {
    const cp = next;
    const bad = signatureOf(cp);
    if (bad) return fail({ seq: cp.seq, kind: bad.startsWith('cannot') ? 'key' : 'checkpoint', problem: `the checkpoint at event ${cp.seq} ${bad}` });
    return fail({ seq: cp.seq, kind: 'tail', problem: `a signed checkpoint covers event ${cp.seq} but the log ends at event ${summary.head}: events were deleted from the tail` });
  }
  const early = await db.selectFrom('audit_events').select('seq').where('seq', '<=', start.seq).limit(1).executeTakeFirst();
  if (early) return fail({ seq: Number(early.seq), kind: 'event', problem: 'event lies before the start of the chain' });

  // 5. The external checkpoint.
  if (external && options.checkpointFile !== undefined) {
    const file = options.checkpointFile;
    if (external.state === 'missing') {
      if (summary.checkpoints > 0) {
        return fail({
          seq: summary.head,
          kind: 'external',
          problem: `the external checkpoint ${file} is missing while the database holds ${summary.checkpoints} checkpoint${summary.checkpoints === 1 ? '' : 's'}, so a deleted tail cannot be ruled out (verify with --checkpoint-file and a copy of it, or --no-checkpoint-file to skip this check)`,
        });
      }
      summary.external = { file, state: 'missing' };
    } else if (external.state === 'invalid') {
      return fail({ seq: summary.head, kind: 'external', problem: `the external checkpoint ${file} is unusable: ${external.problem}` });
    } else {
      const cp = external.checkpoint;
      const bad = signatureOf(cp);
      if (bad) return fail({ seq: cp.seq, kind: bad.startsWith('cannot') ? 'key' : 'external', problem: `the external checkpoint ${file} ${bad}` });
      if (cp.seq > summary.head) {
        return fail({ seq: cp.seq, kind: 'tail', problem: `the external checkpoint ${file} covers event ${cp.seq} but the log ends at event ${summary.head}: events were deleted from the tail` });
      }
      if (cp.seq > newestInDb) {
        return fail({ seq: cp.seq, kind: 'checkpoint', problem: `the external checkpoint ${file} covers event ${cp.seq} but the newest checkpoint in the database is at event ${newestInDb || 'none'}: checkpoint rows were deleted` });
      }
      const expected = cp.seq === start.seq ? start.hash : externalHash;
      if (cp.seq >= start.seq && cp.hash !== expected) {
        return fail({ seq: cp.seq, kind: 'external', problem: `the chain does not match the external checkpoint ${file} at event ${cp.seq}: events were rewritten and the chain recomputed` });
      }
      const state = cp.seq < start.seq ? 'before-anchor' : cp.seq < (summary.latestCheckpoint?.seq ?? 0) ? 'older' : 'matches';
      summary.external = { file, state, seq: cp.seq };
    }
  }
  return { ok: true, ...summary, uncovered: summary.head - covered };
}
