import type { Kysely } from 'kysely';
import { isUniqueViolation } from '../store/constraint-errors.js';
import type { ControlStore } from '../store/database.js';
import type { Database, MemoryVersionsTable } from '../store/tables.js';
import { withWriteTransaction } from '../store/write-transaction.js';
import { nowIso } from '../util/ids.js';

/**
 * The versions of a channel's (or a DM's) memory. Every save is a new
 * version, numbered max + 1 of its scope; two sessions saving at once may
 * pick the same number, and the primary key refuses the second, which tries
 * again with the next one: both land, last writer wins, and the version each
 * started from is kept (`baseVersion`) so an overwritten write shows in the
 * history.
 */
export interface MemoryVersion {
  scope: string;
  version: number;
  content: string;
  bytes: number;
  sessionId: string;
  turnId: string | undefined;
  baseVersion: number | undefined;
  createdAt: string;
}

/** A version without its content, for the history. */
export type MemoryHistoryEntry = Omit<MemoryVersion, 'content'>;

export interface MemoryWrite {
  scope: string;
  content: string;
  sessionId: string;
  turnId?: string;
  /** The version the session had copied in (none: it started empty). */
  baseVersion?: number;
}

/** Versions kept per scope: each is at most 64 KiB, so a busy channel's history stays bounded. */
export const KEEP_MEMORY_VERSIONS = 100;
const SAVE_ATTEMPTS = 20;

export async function latestMemory(db: Kysely<Database>, scope: string): Promise<MemoryVersion | undefined> {
  const row = await db.selectFrom('memory_versions').selectAll().where('scope', '=', scope).orderBy('version', 'desc').limit(1).executeTakeFirst();
  return row && toVersion(row);
}

export async function memoryVersion(db: Kysely<Database>, scope: string, version: number): Promise<MemoryVersion | undefined> {
  const row = await db.selectFrom('memory_versions').selectAll().where('scope', '=', scope).where('version', '=', version).executeTakeFirst();
  return row && toVersion(row);
}

/** Newest first. */
export async function memoryHistory(db: Kysely<Database>, scope: string): Promise<MemoryHistoryEntry[]> {
  const rows = await db
    .selectFrom('memory_versions')
    .select(['scope', 'version', 'bytes', 'session_id', 'turn_id', 'base_version', 'created_at'])
    .where('scope', '=', scope)
    .orderBy('version', 'desc')
    .execute();
  return rows.map((row) => {
    const { content: _content, ...entry } = toVersion({ ...row, content: '' });
    return entry;
  });
}

/**
 * Saves a new version. `within` runs in the same write transaction (the
 * audit event, so that it commits with the version or not at all).
 */
export async function saveMemory(
  store: ControlStore,
  write: MemoryWrite,
  within?: (db: Kysely<Database>, saved: MemoryVersion) => Promise<void>,
): Promise<MemoryVersion> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await withWriteTransaction(store, undefined, async (db) => {
        const saved = await insertNext(db, write);
        await db.deleteFrom('memory_versions').where('scope', '=', write.scope).where('version', '<=', saved.version - KEEP_MEMORY_VERSIONS).execute();
        await within?.(db, saved);
        return saved;
      });
    } catch (error) {
      // Another session took this number first (Postgres: its transaction committed while ours waited).
      if (!isUniqueViolation(error) || attempt >= SAVE_ATTEMPTS) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * attempt));
    }
  }
}

/** Deletes every version of the scope; how many there were. */
export async function clearMemory(db: Kysely<Database>, scope: string): Promise<number> {
  const result = await db.deleteFrom('memory_versions').where('scope', '=', scope).executeTakeFirst();
  return Number(result.numDeletedRows);
}

async function insertNext(db: Kysely<Database>, write: MemoryWrite): Promise<MemoryVersion> {
  const last = await db.selectFrom('memory_versions').select('version').where('scope', '=', write.scope).orderBy('version', 'desc').limit(1).executeTakeFirst();
  const row: MemoryVersionsTable = {
    scope: write.scope,
    version: Number(last?.version ?? 0) + 1,
    content: write.content,
    bytes: Buffer.byteLength(write.content, 'utf8'),
    session_id: write.sessionId,
    turn_id: write.turnId ?? null,
    base_version: write.baseVersion ?? null,
    created_at: nowIso(),
  };
  await db.insertInto('memory_versions').values(row).execute();
  return toVersion(row);
}

function toVersion(row: MemoryVersionsTable): MemoryVersion {
  return {
    scope: row.scope,
    version: Number(row.version),
    content: row.content,
    bytes: Number(row.bytes),
    sessionId: row.session_id,
    turnId: row.turn_id ?? undefined,
    baseVersion: row.base_version === null ? undefined : Number(row.base_version),
    createdAt: row.created_at,
  };
}
