import type { Kysely } from 'kysely';
import type { Database } from '../../store/tables.js';
import { newId } from '../../util/ids.js';
import { hoursFrom, randomSecret, sha256Hex } from '../bearer-secrets.js';

/**
 * Cookie sessions. The cookie holds `tbs_` + 32 random bytes; the row is keyed
 * by its SHA-256. Every sign-in makes a new row and a new cookie value, so a
 * value planted in a browser before sign-in is never promoted (no fixation).
 */
export const SESSION_PREFIX = 'tbs_';

export interface WebSession {
  id: string;
  orgId: string;
  memberId: string;
  expiresAt: string;
  lastSeenAt: string;
}

export async function createSessionIn(
  db: Kysely<Database>,
  input: { orgId: string; memberId: string; method: 'link' | 'oidc'; hours: number },
): Promise<{ cookie: string; session: WebSession }> {
  const cookie = randomSecret(SESSION_PREFIX);
  const now = Date.now();
  const session: WebSession = { id: newId(), orgId: input.orgId, memberId: input.memberId, expiresAt: hoursFrom(now, input.hours), lastSeenAt: new Date(now).toISOString() };
  await db
    .insertInto('web_sessions')
    .values({
      id: session.id,
      org_id: session.orgId,
      member_id: session.memberId,
      session_hash: sha256Hex(cookie),
      method: input.method,
      created_at: session.lastSeenAt,
      expires_at: session.expiresAt,
      last_seen_at: session.lastSeenAt,
      revoked_at: null,
    })
    .execute();
  return { cookie, session };
}

/** The live session of a cookie value: not revoked, before its absolute expiry and not idle longer than idleHours. */
export async function findLiveSession(db: Kysely<Database>, cookie: string, idleHours: number): Promise<WebSession | undefined> {
  if (!cookie.startsWith(SESSION_PREFIX)) return undefined;
  const row = await db.selectFrom('web_sessions').selectAll().where('session_hash', '=', sha256Hex(cookie)).where('revoked_at', 'is', null).executeTakeFirst();
  if (!row) return undefined;
  const now = Date.now();
  if (Date.parse(row.expires_at) <= now) return undefined;
  if (Date.parse(row.last_seen_at) + idleHours * 3_600_000 <= now) return undefined;
  return { id: row.id, orgId: row.org_id, memberId: row.member_id, expiresAt: row.expires_at, lastSeenAt: row.last_seen_at };
}

export async function touchSession(db: Kysely<Database>, id: string): Promise<void> {
  await db.updateTable('web_sessions').set({ last_seen_at: new Date().toISOString() }).where('id', '=', id).execute();
}

/** True when this call revoked it (false: already revoked). */
export async function revokeSessionIn(db: Kysely<Database>, id: string): Promise<boolean> {
  const result = await db.updateTable('web_sessions').set({ revoked_at: new Date().toISOString() }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}
