import { checkpointSignatureProblem, type Checkpoint, type TrustedKeys } from './checkpoint.js';

/**
 * Whether a writer may sign a new head checkpoint — pure, no I/O. Signing the
 * head endorses everything before it, so a writer first checks that the chain
 * still continues what was signed before: the newest checkpoint in the
 * database, and the newest one this process or host knows of (its memory, the
 * external checkpoint file). Otherwise someone who rewrote events, recomputed
 * the chain and deleted the checkpoints that no longer matched would get the
 * next checkpoint to launder the forgery. A refusal is not fatal: appends go
 * on (chained), nothing is signed, and verify reports the problem.
 */
export interface Point {
  seq: number;
  hash: string;
}

export interface CheckpointState {
  /** The newest event, or the anchor when every event was pruned; none for an empty log. */
  head?: Point;
  anchor?: Point;
  /** The newest checkpoint row, of either kind. */
  latest?: Checkpoint;
  /** Event hashes at the seqs the decision asks about (see seqsToRead). */
  hashes: ReadonlyMap<number, string>;
}

export type CheckpointDecision =
  | { action: 'none'; latest?: Checkpoint }
  | { action: 'sign'; head: Point; adoptAnchor?: Point }
  | { action: 'refuse'; problem: string };

/** The event seqs whose hashes decide() compares. */
export function seqsToRead(latest: Checkpoint | undefined, known: Checkpoint | undefined): number[] {
  return [...new Set([latest?.seq, known?.seq].filter((s): s is number => s !== undefined))];
}

/**
 * `known` is trusted as verified (this process signed or checked it): a newest
 * checkpoint identical to it skips the signature check (~0.1 ms, once a second).
 */
export function decideCheckpoint(state: CheckpointState, known: Checkpoint | undefined, trusted: TrustedKeys, keyId: string): CheckpointDecision {
  const { head, anchor, latest } = state;
  const hashAt = (seq: number): string | undefined => (anchor && seq === anchor.seq ? anchor.hash : state.hashes.get(seq));
  const refuse = (problem: string): CheckpointDecision => ({ action: 'refuse', problem });

  if (latest) {
    const where = `the newest checkpoint in the database (event ${latest.seq})`;
    if (latest.keyId !== keyId) {
      return refuse(`${where} is signed by key ${latest.keyId}, not by this process's key ${keyId}: every writer must use the same audit signing key (audit.signingKeyFile or TAGBOX_AUDIT_SIGNING_KEY), or that checkpoint is forged`);
    }
    const bad = known && sameCheckpoint(latest, known) ? null : checkpointSignatureProblem(latest, trusted);
    if (bad) return refuse(`${where} ${bad}`);
    if (!head || latest.seq > head.seq) return refuse(`${where} is beyond the last event (${head?.seq ?? 'none'}): events were deleted from the tail`);
    if (latest.kind === 'anchor') {
      if (!anchor || anchor.seq !== latest.seq || anchor.hash !== latest.hash) return refuse(`${where} is an anchor checkpoint that does not match the retention anchor: the anchor was moved`);
    } else {
      const hash = hashAt(latest.seq);
      if (hash === undefined) return refuse(`event ${latest.seq}, which ${where} covers, is missing`);
      if (hash !== latest.hash) return refuse(`event ${latest.seq} no longer matches its signed checkpoint: the chain was rewritten`);
    }
  }

  if (known) {
    if (!latest || known.seq > latest.seq) {
      return refuse(`the newest checkpoint known here (event ${known.seq}) is missing from the database (newest there: ${latest ? `event ${latest.seq}` : 'none'}): checkpoint rows or tail events were deleted`);
    }
    if (known.seq >= (anchor?.seq ?? 0)) {
      const hash = hashAt(known.seq);
      if (hash !== known.hash) return refuse(`event ${known.seq} no longer matches the checkpoint known here: the chain was rewritten`);
    }
    // Older than the anchor: those events were pruned; nothing left to compare.
  }

  if (!head) return { action: 'none' };
  if (latest && latest.seq >= head.seq) return { action: 'none', latest };
  // Trust on first checkpoint: the very first one also signs a retention
  // anchor left by a version of Tagbox that did not sign anchors yet. Once any
  // checkpoint exists, an unsigned anchor is never adopted.
  const adoptAnchor = !latest && !known && anchor ? anchor : undefined;
  return { action: 'sign', head, ...(adoptAnchor ? { adoptAnchor } : {}) };
}

export function sameCheckpoint(a: Checkpoint, b: Checkpoint): boolean {
  return a.kind === b.kind && a.seq === b.seq && a.hash === b.hash && a.ts === b.ts && a.keyId === b.keyId && a.signature === b.signature;
}
