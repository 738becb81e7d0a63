import type { Kysely } from 'kysely';
import type { Database } from '../store/tables.js';
import { nowIso } from '../util/ids.js';

/**
 * The engine's own state (its transcript), copied out of the sandbox after
 * each turn as versioned blobs and restored into a rebuilt one. The blob is
 * opaque to the host: it is stored and handed back to a sandbox of the same
 * session, never unpacked or read here (invariant 9).
 */
const KEEP_VERSIONS = 3;

export async function saveEngineState(db: Kysely<Database>, sessionId: string, engine: string, data: Buffer): Promise<number> {
  const last = await db.selectFrom('engine_states').select('version').where('session_id', '=', sessionId).orderBy('version', 'desc').limit(1).executeTakeFirst();
  const version = Number(last?.version ?? 0) + 1;
  await db
    .insertInto('engine_states')
    .values({ session_id: sessionId, version, engine, data: data.toString('base64'), bytes: data.length, created_at: nowIso() })
    .execute();
  await db.deleteFrom('engine_states').where('session_id', '=', sessionId).where('version', '<=', version - KEEP_VERSIONS).execute();
  return version;
}

export async function loadEngineState(db: Kysely<Database>, sessionId: string): Promise<{ version: number; engine: string; data: Buffer } | undefined> {
  const row = await db.selectFrom('engine_states').selectAll().where('session_id', '=', sessionId).orderBy('version', 'desc').limit(1).executeTakeFirst();
  return row && { version: Number(row.version), engine: row.engine, data: Buffer.from(row.data, 'base64') };
}
