import { EventEmitter } from 'node:events';
import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../store/connect.js';
import type { Database } from '../store/tables.js';
import { nowIso } from '../util/ids.js';

/** The Postgres NOTIFY channel; the payload is the org id. */
export const POLICY_CHANNEL = 'tagbox_policy';

/**
 * In-process fast path: AccessAdmin emits `change` (orgId) after a commit, so
 * watchers in the same process need not wait for their next poll. Other
 * processes learn of changes by NOTIFY (Postgres) or by polling (SQLite).
 */
export const policyEvents = new EventEmitter();
policyEvents.setMaxListeners(0);

/**
 * Bumps the org's policy revision inside the caller's transaction. On Postgres
 * the NOTIFY is delivered when (and only if) that transaction commits.
 */
export async function bumpRevision(db: Kysely<Database>, dialect: Dialect, orgId: string): Promise<void> {
  const now = nowIso();
  await db
    .insertInto('policy_revisions')
    .values({ org_id: orgId, revision: 1, updated_at: now })
    .onConflict((oc) => oc.column('org_id').doUpdateSet({ revision: sql<number>`policy_revisions.revision + 1`, updated_at: now }))
    .execute();
  if (dialect === 'postgres') await sql`select pg_notify(${POLICY_CHANNEL}, ${orgId})`.execute(db);
}

/** 0 for an org that has never changed. */
export async function readRevision(db: Kysely<Database>, orgId: string): Promise<number> {
  const row = await db.selectFrom('policy_revisions').select('revision').where('org_id', '=', orgId).executeTakeFirst();
  return row ? Number(row.revision) : 0;
}
