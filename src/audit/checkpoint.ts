import { createHash, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalJson } from './chain.js';

/**
 * A checkpoint: an Ed25519 signature over one point of the audit chain —
 * the (seq, hash) of an event — made with the audit signing key, which lives
 * outside the database (signing-key.ts). The chain's hashes are unkeyed, so
 * anyone who can write the table could rewrite an event and recompute every
 * hash after it; they cannot make a checkpoint match the rewritten chain.
 *
 * - `head`: the chain went at least this far, and looked like this.
 * - `anchor`: retention pruning deliberately left the chain's start here
 *   (audit_anchor); an anchor without one was moved by hand.
 *
 * Like CloudTrail's digest files. The signature covers every field but itself,
 * behind a domain-separation prefix, so a signature over anything else Tagbox
 * might sign one day can never pass for a checkpoint.
 */
export type CheckpointKind = 'head' | 'anchor';

export interface CheckpointBody {
  kind: CheckpointKind;
  seq: number;
  hash: string;
  /** When it was signed (ISO 8601). */
  ts: string;
  /** Which key signed it: see keyIdOf. */
  keyId: string;
}

export interface Checkpoint extends CheckpointBody {
  /** Ed25519 signature, base64. */
  signature: string;
}

const DOMAIN = 'tagbox audit checkpoint v1\n';

export function checkpointMessage(body: CheckpointBody): Buffer {
  const { kind, seq, hash, ts, keyId } = body;
  return Buffer.from(DOMAIN + canonicalJson({ kind, seq, hash, ts, keyId }));
}

/** A public key's id: the first 16 hex digits of SHA-256 over its SPKI DER. */
export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}

export function signCheckpoint(privateKey: KeyObject, body: CheckpointBody): Checkpoint {
  return { ...body, signature: sign(null, checkpointMessage(body), privateKey).toString('base64') };
}

/** The public keys verify trusts, by key id. Never read from the database. */
export type TrustedKeys = ReadonlyMap<string, KeyObject>;

/** Null when the checkpoint is signed by a trusted key; otherwise what is wrong, as a predicate ("is signed by ..."). */
export function checkpointSignatureProblem(checkpoint: Checkpoint, trusted: TrustedKeys): string | null {
  const key = trusted.get(checkpoint.keyId);
  if (!key) {
    return `is signed by key ${checkpoint.keyId}, which is not the audit signing key (${[...trusted.keys()].join(', ') || 'none'}): forged, or signed with another deployment's key`;
  }
  let ok = false;
  try {
    ok = verify(null, checkpointMessage(checkpoint), key, Buffer.from(checkpoint.signature, 'base64'));
  } catch {
    ok = false;
  }
  return ok ? null : 'has a signature that does not verify: the checkpoint was altered or forged';
}

/** A checkpoint row as stored (audit_checkpoints). */
export interface CheckpointRow {
  seq: number;
  kind: string;
  hash: string;
  ts: string;
  key_id: string;
  signature: string;
}

export function fromRow(row: CheckpointRow): Checkpoint {
  return { kind: row.kind as CheckpointKind, seq: Number(row.seq), hash: row.hash, ts: row.ts, keyId: row.key_id, signature: row.signature };
}

export function toRow(checkpoint: Checkpoint): CheckpointRow {
  return { seq: checkpoint.seq, kind: checkpoint.kind, hash: checkpoint.hash, ts: checkpoint.ts, key_id: checkpoint.keyId, signature: checkpoint.signature };
}

/**
 * Parses a checkpoint from JSON text (the external checkpoint file), strictly:
 * a malformed file is reported as such rather than trusted or ignored.
 */
export function parseCheckpoint(text: string): Checkpoint | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'not valid JSON';
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'expected a JSON object';
  const v = value as Record<string, unknown>;
  if (v.kind !== 'head' && v.kind !== 'anchor') return 'kind: expected "head" or "anchor"';
  if (typeof v.seq !== 'number' || !Number.isSafeInteger(v.seq) || v.seq < 1) return 'seq: expected a positive integer';
  if (typeof v.hash !== 'string' || !/^[0-9a-f]{64}$/.test(v.hash)) return 'hash: expected 64 hex digits';
  if (typeof v.ts !== 'string' || Number.isNaN(Date.parse(v.ts))) return 'ts: expected an ISO 8601 time';
  if (typeof v.keyId !== 'string' || !/^[0-9a-f]{16}$/.test(v.keyId)) return 'keyId: expected 16 hex digits';
  if (typeof v.signature !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(v.signature)) return 'signature: expected base64';
  return { kind: v.kind, seq: v.seq, hash: v.hash, ts: v.ts, keyId: v.keyId, signature: v.signature };
}
