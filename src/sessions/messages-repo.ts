import type { Kysely, Selectable } from 'kysely';
import type { Database, MessagesTable } from '../store/tables.js';
import { newId, nowIso } from '../util/ids.js';
import type { Author, Message } from './model.js';

/** A thread's messages, oldest first; each records its author. */
export async function insertMessage(
  db: Kysely<Database>,
  input: { sessionId: string; author: Author; text: string; turnId?: string; dedupeKey?: string; context?: boolean; createdAt?: string },
): Promise<Message> {
  const row: Selectable<MessagesTable> = {
    id: newId(),
    session_id: input.sessionId,
    author_kind: input.author.kind,
    author_id: input.author.id ?? null,
    author_name: input.author.name ?? null,
    text: input.text,
    dedupe_key: input.dedupeKey ?? null,
    turn_id: input.turnId ?? null,
    created_at: input.createdAt ?? nowIso(),
    context: input.context ? 1 : 0,
  };
  await db.insertInto('messages').values(row).execute();
  return toMessage(row);
}

/** The message a surface already delivered under this key, with its session and turn. */
export async function findByDedupeKey(db: Kysely<Database>, key: string): Promise<{ message: Message; sessionId: string; turnId: string | undefined } | undefined> {
  const row = await db.selectFrom('messages').selectAll().where('dedupe_key', '=', key).executeTakeFirst();
  return row && { message: toMessage(row), sessionId: row.session_id, turnId: row.turn_id ?? undefined };
}

export async function listMessages(db: Kysely<Database>, sessionId: string, limit = 1000): Promise<Message[]> {
  const rows = await db.selectFrom('messages').selectAll().where('session_id', '=', sessionId).orderBy('created_at').orderBy('id').limit(limit).execute();
  return rows.map(toMessage);
}

/** The member messages a turn answers, in order. */
export async function turnMessages(db: Kysely<Database>, turnId: string): Promise<Message[]> {
  const rows = await db.selectFrom('messages').selectAll().where('turn_id', '=', turnId).where('author_kind', '=', 'member').orderBy('created_at').orderBy('id').execute();
  return rows.map(toMessage);
}

export function toMessage(row: Selectable<MessagesTable>): Message {
  const author: Author = { kind: row.author_kind as Author['kind'] };
  if (row.author_id) author.id = row.author_id;
  if (row.author_name) author.name = row.author_name;
  return { id: row.id, author, text: row.text, ts: row.created_at, ...(row.context ? { context: true as const } : {}) };
}
