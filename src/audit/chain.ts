import { createHash } from 'node:crypto';

/**
 * The hash chain, pure: each event's hash covers the previous hash and the
 * event's canonical JSON (which includes its sequence number), so editing,
 * deleting or reordering any event breaks every hash after it. The columns
 * the table keeps beside `data` for filtering (ts, type, outcome, actor,
 * session_id, channel_id) are derived from the hashed event by one function,
 * `eventColumns`, and checked against it, so no stored column escapes the hash.
 * The chain alone is unkeyed: anyone who can write the table can recompute it.
 * Signed checkpoints (checkpoint.ts) are what an attacker without the key cannot forge.
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

/** The denormalised columns of an event row, as the writer stores them and verify expects them. */
export interface EventColumns {
  ts: string;
  type: string;
  outcome: string | null;
  actor: string | null;
  session_id: string | null;
  channel_id: string | null;
}

const COLUMN_FIELDS: ReadonlyArray<[keyof EventColumns, string]> = [
  ['ts', 'ts'],
  ['type', 'type'],
  ['outcome', 'outcome'],
  ['actor', 'actor'],
  ['session_id', 'session'],
  ['channel_id', 'channel'],
];

export function eventColumns(event: Record<string, unknown>): EventColumns {
  const out = {} as Record<keyof EventColumns, string | null>;
  for (const [column, field] of COLUMN_FIELDS) out[column] = asText(event[field]);
  return out as unknown as EventColumns;
}

function asText(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  // Canonical, so that the writer (from the event) and verify (from its parsed JSON) agree.
  return typeof value === 'string' ? value : canonicalJson(value);
}

export interface ChainLink extends EventColumns {
  seq: number;
  data: string;
  prev_hash: string;
  hash: string;
}

export type ChainBreak = { seq: number; problem: string };

/**
 * Checks links one at a time, in order, from `start` (the genesis, or the
 * anchor left by retention pruning). `check` returns the first problem of a
 * link, or null; after a null the walker has moved past that link, and
 * `parsed` is its verified event.
 */
export class ChainWalker {
  private prev: string;
  private nextSeq: number;
  /** The last verified link's event (after a successful check). */
  parsed: Record<string, unknown> = {};

  constructor(start: { seq: number; hash: string }) {
    this.prev = start.hash;
    this.nextSeq = start.seq + 1;
  }

  /** The (seq, hash) the next link must follow. */
  get head(): { seq: number; hash: string } {
    return { seq: this.nextSeq - 1, hash: this.prev };
  }

  check(link: ChainLink): ChainBreak | null {
    const seq = Number(link.seq);
    if (seq !== this.nextSeq) return { seq, problem: `sequence gap: expected event ${this.nextSeq}, found ${seq}` };
    if (link.prev_hash !== this.prev) return { seq, problem: 'previous-hash link does not match the event before it' };
    let parsed: unknown;
    try {
      parsed = JSON.parse(link.data);
    } catch {
      return { seq, problem: 'stored data is not valid JSON' };
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return { seq, problem: 'stored data is not an event object' };
    const event = parsed as Record<string, unknown>;
    if (event.seq !== seq) return { seq, problem: 'stored data names another sequence number' };
    if (canonicalJson(event) !== link.data || chainHash(this.prev, link.data) !== link.hash) {
      return { seq, problem: 'content does not match its hash (edited)' };
    }
    const expected = eventColumns(event);
    for (const [column] of COLUMN_FIELDS) {
      if (link[column] !== expected[column]) {
        return { seq, problem: `column ${column} (${describe(link[column])}) does not match the hashed event (${describe(expected[column])})` };
      }
    }
    this.parsed = event;
    this.prev = link.hash;
    this.nextSeq = seq + 1;
    return null;
  }
}

function describe(value: unknown): string {
  return value === null || value === undefined ? 'empty' : JSON.stringify(value);
}

/** Checks links in order from `start`; the first problem, or null. */
export function verifyLinks(links: Iterable<ChainLink>, start: { seq: number; hash: string }): ChainBreak | null {
  const walker = new ChainWalker(start);
  for (const link of links) {
    const broken = walker.check(link);
    if (broken) return broken;
  }
  return null;
}
