import { sql, type Kysely } from 'kysely';
import type { Database } from '../../store/tables.js';

/** One row of the chat's thread list. */
export interface ThreadSummary {
  thread: string;
  title: string;
  startedBy: { id: string; name: string } | null;
  lastActivity: string;
  state: 'idle' | 'queued' | 'running';
  messages: number;
}

export const TITLE_CHARS = 120;
/** Enough of the first message for a 120-character first line; never a whole 1 MiB message per row. */
const TITLE_SOURCE_CHARS = 2000;

/**
 * The threads of one place (`channel:<id>` or `dm:<member id>`) of a
 * workspace, newest activity first, in one query whatever the number of
 * threads: the first message joined by its id, the count and the open turns
 * as correlated subqueries (both dialects). `before` pages: threads active strictly earlier.
 */
export async function listThreads(db: Kysely<Database>, input: { workspaceId: string; place: string; limit: number; before?: string }): Promise<ThreadSummary[]> {
  const rows = await db
    .selectFrom('sessions as s')
    // The first message itself, joined by its id (one correlated subquery; SQLite has no LATERAL).
    .leftJoin('messages as f', (join) =>
      join.on((eb) =>
        eb('f.id', '=', eb.selectFrom('messages as m').select('m.id').whereRef('m.session_id', '=', 's.id').where('m.context', '=', 0).orderBy('m.created_at').orderBy('m.id').limit(1)),
      ),
    )
    .select((eb) => [
      's.id',
      's.last_activity_at',
      sql<string | null>`substr(f.text, 1, ${sql.lit(TITLE_SOURCE_CHARS)})`.as('first_text'),
      'f.author_kind as first_kind',
      'f.author_id as first_id',
      'f.author_name as first_name',
      eb.selectFrom('messages as m').select(sql<number>`count(*)`.as('n')).whereRef('m.session_id', '=', 's.id').where('m.context', '=', 0).as('message_count'),
      eb.selectFrom('turns as t').select(sql<number>`count(*)`.as('n')).whereRef('t.session_id', '=', 's.id').where('t.status', '=', 'running').as('running'),
      eb.selectFrom('turns as t').select(sql<number>`count(*)`.as('n')).whereRef('t.session_id', '=', 's.id').where('t.status', '=', 'queued').as('queued'),
    ])
    .where('s.workspace_id', '=', input.workspaceId)
    .where('s.place', '=', input.place)
    .$if(input.before !== undefined, (q) => q.where('s.last_activity_at', '<', input.before!))
    .orderBy('s.last_activity_at', 'desc')
    .orderBy('s.id', 'desc')
    .limit(input.limit)
    .execute();
  return rows.map((r) => ({
    thread: r.id,
    title: titleOf(r.first_text ?? ''),
    startedBy: r.first_kind === 'member' && r.first_id ? { id: r.first_id, name: r.first_name ?? r.first_id } : null,
    lastActivity: r.last_activity_at,
    state: Number(r.running) > 0 ? 'running' : Number(r.queued) > 0 ? 'queued' : 'idle',
    messages: Number(r.message_count ?? 0),
  }));
}

/** The first line of the first message, trimmed, at most 120 characters. */
export function titleOf(text: string): string {
  const line = text.trimStart().split(/\r?\n/, 1)[0]!.trim();
  return [...line].slice(0, TITLE_CHARS).join('');
}
