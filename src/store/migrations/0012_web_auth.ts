import type { Kysely } from 'kysely';

/**
 * Web sign-in (docs/WEB.md "Signing in"). Like API tokens, sign-in links and
 * session cookies are stored only as SHA-256 hashes of 32 random bytes: the
 * database alone never lets anyone sign in.
 *
 * - web_signin_links: one-time links; `used_at` is set by the one UPDATE that
 *   consumes it, so two concurrent uses make exactly one session.
 * - web_sessions: cookie sessions, absolute `expires_at`, idle `last_seen_at`,
 *   `revoked_at` on sign-out.
 * - member_emails: the email an invitation named (OIDC maps a verified email to it).
 * - oidc_identities: a provider's (issuer, subject) -> member, once linked.
 * - oidc_logins: one pending OIDC login (state, nonce, PKCE verifier), keyed by
 *   the hash of a short-lived browser cookie; deleted when the callback uses it.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('web_signin_links')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
    .addColumn('member_id', 'text', (c) => c.notNull().references('members.id').onDelete('cascade'))
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('used_at', 'text')
    .execute();
  await db.schema
    .createTable('web_sessions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('orgs.id').onDelete('cascade'))
    .addColumn('member_id', 'text', (c) => c.notNull().references('members.id').onDelete('cascade'))
    .addColumn('session_hash', 'text', (c) => c.notNull().unique())
    // 'link' | 'oidc': how the browser signed in.
    .addColumn('method', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('last_seen_at', 'text', (c) => c.notNull())
    .addColumn('revoked_at', 'text')
    .execute();
  await db.schema.createIndex('web_sessions_member_idx').on('web_sessions').column('member_id').execute();
  await db.schema
    .createTable('member_emails')
    .addColumn('member_id', 'text', (c) => c.primaryKey().references('members.id').onDelete('cascade'))
    // Lower-cased.
    .addColumn('email', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('member_emails_email_idx').on('member_emails').column('email').execute();
  await db.schema
    .createTable('oidc_identities')
    .addColumn('issuer', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('member_id', 'text', (c) => c.notNull().references('members.id').onDelete('cascade'))
    .addColumn('email', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('oidc_identities_pk', ['issuer', 'subject'])
    .execute();
  await db.schema
    .createTable('oidc_logins')
    .addColumn('id_hash', 'text', (c) => c.primaryKey())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('nonce', 'text', (c) => c.notNull())
    .addColumn('code_verifier', 'text', (c) => c.notNull())
    .addColumn('next', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['oidc_logins', 'oidc_identities', 'member_emails', 'web_sessions', 'web_signin_links']) await db.schema.dropTable(table).execute();
}
