import type { Kysely } from 'kysely';
import type { Database } from '../../store/tables.js';
import { randomSecret, sha256Hex } from '../bearer-secrets.js';

/**
 * A pending OIDC login: state, nonce and PKCE verifier, kept in the database
 * (any replica can finish it) and bound to the browser that started it by a
 * short-lived cookie whose hash is the key. Taken once: the callback deletes it.
 */
export const OIDC_COOKIE = 'tagbox_oidc';
export const OIDC_LOGIN_MINUTES = 10;

export interface PendingLogin {
  state: string;
  nonce: string;
  codeVerifier: string;
  next: string;
}

export async function savePendingLogin(db: Kysely<Database>, login: PendingLogin): Promise<{ cookie: string }> {
  const cookie = randomSecret('tbo_');
  const now = Date.now();
  // Leftovers of abandoned logins go as new ones come.
  await db.deleteFrom('oidc_logins').where('expires_at', '<', new Date(now).toISOString()).execute();
  await db
    .insertInto('oidc_logins')
    .values({
      id_hash: sha256Hex(cookie),
      state: login.state,
      nonce: login.nonce,
      code_verifier: login.codeVerifier,
      next: login.next,
      created_at: new Date(now).toISOString(),
      expires_at: new Date(now + OIDC_LOGIN_MINUTES * 60_000).toISOString(),
    })
    .execute();
  return { cookie };
}

/** The login of this cookie, removed so that it can never be finished twice; undefined when gone or expired. */
export async function takePendingLogin(db: Kysely<Database>, cookie: string): Promise<PendingLogin | undefined> {
  const hash = sha256Hex(cookie);
  const row = await db.selectFrom('oidc_logins').selectAll().where('id_hash', '=', hash).executeTakeFirst();
  if (!row) return undefined;
  const deleted = await db.deleteFrom('oidc_logins').where('id_hash', '=', hash).executeTakeFirst();
  // Two callbacks at once: only the one whose DELETE removed the row goes on.
  if (Number(deleted.numDeletedRows) !== 1) return undefined;
  if (Date.parse(row.expires_at) <= Date.now()) return undefined;
  return { state: row.state, nonce: row.nonce, codeVerifier: row.code_verifier, next: row.next };
}
