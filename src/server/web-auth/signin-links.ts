import type { Kysely } from 'kysely';
import type { Database } from '../../store/tables.js';
import { newId } from '../../util/ids.js';
import { hoursFrom, randomSecret, sha256Hex } from '../bearer-secrets.js';

/**
 * One-time sign-in links: `tbl_` + 32 random bytes, carried in the URL
 * fragment (`/signin#token=...`), stored as a SHA-256 only.
 */
export const LINK_PREFIX = 'tbl_';

export interface NewLink {
  id: string;
  token: string;
  expiresAt: string;
}

export async function createLinkIn(db: Kysely<Database>, input: { orgId: string; memberId: string; createdBy: string; hours: number }): Promise<NewLink> {
  const token = randomSecret(LINK_PREFIX);
  const now = Date.now();
  const link = { id: newId(), token, expiresAt: hoursFrom(now, input.hours) };
  await db
    .insertInto('web_signin_links')
    .values({
      id: link.id,
      org_id: input.orgId,
      member_id: input.memberId,
      token_hash: sha256Hex(token),
      created_by: input.createdBy,
      created_at: new Date(now).toISOString(),
      expires_at: link.expiresAt,
      used_at: null,
    })
    .execute();
  return link;
}

/**
 * Uses the link up: one UPDATE that only matches an unused, unexpired link,
 * so of two concurrent uses exactly one sees a row changed (the row lock on
 * Postgres, the write lock on SQLite). Undefined: unknown, used or expired.
 */
export async function consumeLinkIn(db: Kysely<Database>, token: string): Promise<{ id: string; orgId: string; memberId: string } | undefined> {
  if (!token.startsWith(LINK_PREFIX)) return undefined;
  const hash = sha256Hex(token);
  const now = new Date().toISOString();
  const result = await db
    .updateTable('web_signin_links')
    .set({ used_at: now })
    .where('token_hash', '=', hash)
    .where('used_at', 'is', null)
    .where('expires_at', '>', now)
    .executeTakeFirst();
  if (Number(result.numUpdatedRows) !== 1) return undefined;
  const row = await db.selectFrom('web_signin_links').select(['id', 'org_id', 'member_id']).where('token_hash', '=', hash).executeTakeFirstOrThrow();
  return { id: row.id, orgId: row.org_id, memberId: row.member_id };
}
