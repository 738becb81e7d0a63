import { getMember } from '../../access/members-repo.js';
import { getWorkspace } from '../../access/workspaces-repo.js';
import type { AuditLog } from '../../audit/log.js';
import type { ControlStore } from '../../store/database.js';
import { withWriteTransaction } from '../../store/write-transaction.js';
import type { AccessAdminPort } from '../access-port.js';
import { webWorkspaceId } from './web-workspace.js';

export interface OidcClaims {
  iss: string;
  sub: string;
  email?: string;
  emailVerified: boolean;
  name?: string;
}

export type Mapped = { memberId: string; orgId: string; how: 'identity' | 'invited' | 'domain' } | { refused: string };

/**
 * Which member a provider's identity is, in order: the member it was linked
 * to before; else the web-workspace member invited with that email (a
 * verified email only: an unverified one is anyone's claim), now linked; else,
 * when the email's domain is allowed, a new member (role member), linked;
 * else nobody, with a reason naming the email.
 */
export async function mapIdentity(
  store: ControlStore,
  audit: AuditLog,
  access: AccessAdminPort,
  claims: OidcClaims,
  allowedDomains: readonly string[],
): Promise<Mapped> {
  const linked = await store.db.selectFrom('oidc_identities').select('member_id').where('issuer', '=', claims.iss).where('subject', '=', claims.sub).executeTakeFirst();
  if (linked) {
    const member = await getMember(store.db, linked.member_id);
    const workspace = member && (await getWorkspace(store.db, member.workspaceId));
    if (member && workspace) return { memberId: member.id, orgId: workspace.orgId, how: 'identity' };
  }
  const email = claims.email?.toLowerCase();
  if (!email) return { refused: 'your identity provider sent no email address; ask an admin to invite you' };
  if (!claims.emailVerified) return { refused: `the email ${email} is not verified by your identity provider; verify it there, or ask an admin for a sign-in link` };
  const org = await access.ensureDefaultOrg();
  const workspaceId = await webWorkspaceId(store.db, org.id);
  if (!workspaceId) return { refused: 'this Tagbox has no web workspace yet' };
  const invited = await store.db
    .selectFrom('member_emails')
    .innerJoin('members', 'members.id', 'member_emails.member_id')
    .select('members.id')
    .where('member_emails.email', '=', email)
    .where('members.workspace_id', '=', workspaceId)
    .orderBy('members.created_at')
    .executeTakeFirst();
  if (invited) {
    // One provider account per member: an invitation already taken by another subject is not handed to a second.
    const taken = await store.db.selectFrom('oidc_identities').select('subject').where('member_id', '=', invited.id).where('issuer', '=', claims.iss).executeTakeFirst();
    if (taken) return { refused: `the Tagbox member invited as ${email} is already linked to another account of your identity provider; ask an admin` };
    await link(store, audit, { ...claims, email }, invited.id, org.id);
    return { memberId: invited.id, orgId: org.id, how: 'invited' };
  }
  const domain = email.slice(email.lastIndexOf('@') + 1);
  if (!allowedDomains.map((d) => d.toLowerCase()).includes(domain)) return { refused: `no Tagbox member for ${email}; ask an admin to invite you` };
  const actor = `oidc:${claims.iss}`;
  const member = await access.createMember(actor, { workspaceId, externalId: `email:${email}`, displayName: claims.name?.trim().slice(0, 200) || email, hasAccount: true, roles: [] });
  await store.db.insertInto('member_emails').values({ member_id: member.id, email, created_at: new Date().toISOString() }).execute();
  await link(store, audit, { ...claims, email }, member.id, org.id);
  return { memberId: member.id, orgId: org.id, how: 'domain' };
}

async function link(store: ControlStore, audit: AuditLog, claims: OidcClaims & { email: string }, memberId: string, orgId: string): Promise<void> {
  await withWriteTransaction(store, undefined, async (db) => {
    await db.insertInto('oidc_identities').values({ issuer: claims.iss, subject: claims.sub, member_id: memberId, email: claims.email, created_at: new Date().toISOString() }).execute();
    await audit.appendIn(db, [
      { type: 'admin-change', actor: `oidc:${claims.iss}`, outcome: 'ok', org: orgId, action: 'oidc.link', target: `member:${memberId}`, issuer: claims.iss, subject: claims.sub, email: claims.email },
    ]);
  });
}
