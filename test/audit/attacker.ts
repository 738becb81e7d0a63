import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import type { Kysely } from 'kysely';
import { checkpointMessage, keyIdOf } from '../../src/audit/checkpoint.js';
import type { Database } from '../../src/store/tables.js';

/**
 * What an attacker who can write the database (but holds no audit signing key)
 * can do, written the way they would: plain SQL, plain SHA-256, the published
 * formats. Nothing here goes through the audit code's write paths.
 */
export interface EventRow {
  seq: number;
  ts: string;
  type: string;
  outcome: string | null;
  actor: string | null;
  session_id: string | null;
  channel_id: string | null;
  data: string;
  prev_hash: string;
  hash: string;
}

export async function eventRows(db: Kysely<Database>): Promise<EventRow[]> {
  return (await db.selectFrom('audit_events').selectAll().orderBy('seq', 'asc').execute()).map((r) => ({ ...r, seq: Number(r.seq) }));
}

function sorted(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sorted);
  if (value && typeof value === 'object') return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sorted((value as Record<string, unknown>)[k])]));
  return value;
}

/**
 * Rewrites one event and recomputes the chain from there to the head with
 * SHA-256, columns and all, so that every link and every column is consistent again.
 */
export async function rewriteAndRecompute(db: Kysely<Database>, seq: number, edit: (event: Record<string, unknown>) => void): Promise<void> {
  const rows = await eventRows(db);
  let prev = rows.find((r) => r.seq === seq)!.prev_hash;
  for (const row of rows.filter((r) => r.seq >= seq)) {
    const event = JSON.parse(row.data) as Record<string, unknown>;
    if (row.seq === seq) edit(event);
    const data = JSON.stringify(sorted(event));
    const hash = createHash('sha256').update(`${prev}\n${data}`).digest('hex');
    await db
      .updateTable('audit_events')
      .set({ data, prev_hash: prev, hash, type: String(event.type), ts: String(event.ts), outcome: (event.outcome as string | undefined) ?? null, actor: (event.actor as string | undefined) ?? null })
      .where('seq', '=', row.seq)
      .execute();
    prev = hash;
  }
}

export function attackerKey(): { privateKey: KeyObject; keyId: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, keyId: keyIdOf(publicKey) };
}

/** A checkpoint over (seq, hash) signed with the attacker's own key, claiming key `keyId`. */
export function forgeCheckpoint(privateKey: KeyObject, keyId: string, point: { seq: number; hash: string }, kind: 'head' | 'anchor' = 'head') {
  const body = { kind, seq: point.seq, hash: point.hash, ts: new Date().toISOString(), keyId };
  return { ...body, signature: sign(null, checkpointMessage(body), privateKey).toString('base64') };
}

export async function insertCheckpoint(db: Kysely<Database>, cp: ReturnType<typeof forgeCheckpoint>): Promise<void> {
  await db.insertInto('audit_checkpoints').values({ seq: cp.seq, kind: cp.kind, hash: cp.hash, ts: cp.ts, key_id: cp.keyId, signature: cp.signature }).execute();
}

export async function checkpointRows(db: Kysely<Database>) {
  return (await db.selectFrom('audit_checkpoints').selectAll().orderBy('seq', 'asc').execute()).map((r) => ({ ...r, seq: Number(r.seq) }));
}
