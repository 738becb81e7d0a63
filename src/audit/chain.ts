import { createHash } from 'node:crypto';

/**
 * The hash chain, pure: each event's hash covers the previous hash and the
 * event's canonical JSON (which includes its sequence number), so editing,
 * deleting or reordering any event breaks every hash after it.
 */
export const GENESIS_HASH = '0'.repeat(64);

export function chainHash(prevHash: string, canonicalData: string): string {
  return createHash('sha256').update(prevHash).update('\n').update(canonicalData).digest('hex');
}

/** JSON with object keys sorted at every depth and undefined dropped: one text per value. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sortKeys(v);
    }
    return out;
  }
  return value;
}

export interface ChainLink {
  seq: number;
  data: string;
  prev_hash: string;
  hash: string;
}

export type ChainBreak = { seq: number; problem: string };

/**
 * Checks links in order. `expectedPrev` is the hash the first link must follow
 * (the genesis hash, or the anchor left by retention pruning).
 */
export function verifyLinks(links: Iterable<ChainLink>, expectedPrev: string, expectedSeq: number): ChainBreak | null {
  let prev = expectedPrev;
  let seq = expectedSeq;
  for (const link of links) {
    if (link.seq !== seq) return { seq: link.seq, problem: `sequence gap: expected event ${seq}, found ${link.seq}` };
    if (link.prev_hash !== prev) return { seq: link.seq, problem: 'previous-hash link does not match the event before it' };
    let parsed: unknown;
    try {
      parsed = JSON.parse(link.data);
    } catch {
      return { seq: link.seq, problem: 'stored data is not valid JSON' };
    }
    if ((parsed as { seq?: unknown }).seq !== link.seq) return { seq: link.seq, problem: 'stored data names another sequence number' };
    if (canonicalJson(parsed) !== link.data || chainHash(prev, link.data) !== link.hash) {
      return { seq: link.seq, problem: 'content does not match its hash (edited)' };
    }
    prev = link.hash;
    seq += 1;
  }
  return null;
}
