import type { AccessAdmin } from '../access/admin-service.js';
import { createMemberIn } from '../access/members-repo.js';
import type { Org } from '../access/model.js';
import { accessTransaction, lockNamed } from '../access/transaction.js';
import { createChannel, createWorkspace } from '../access/workspaces-repo.js';
import type { AuditLog } from '../audit/log.js';
import type { ControlStore } from '../store/database.js';
import { createToken } from './tokens-repo.js';
import { createLinkIn } from './web-auth/signin-links.js';

export interface FirstRun {
  org: Org;
  /** Set only in the one process that created the first Owner: its one-time token. */
  ownerToken?: string;
  ownerMemberId?: string;
  /** With ownerToken: a one-time web sign-in link's token for the Owner (server-main formats the URL once it listens). */
  ownerSignInToken?: string;
  ownerSignInExpiresAt?: string;
}

export const WEB_WORKSPACE_EXTERNAL_ID = 'web';

/**
 * First start of a deployment: the org, the built-in web workspace, the first
 * Owner and a one-time owner token. Everything after the org happens in one
 * transaction under a named lock (BEGIN IMMEDIATE on SQLite, an advisory lock
 * on Postgres), so several `tagbox up` starting together create one Owner and
 * exactly one of them gets a token to print. Later starts find an Owner and
 * mint nothing: a restart never hands out owner access.
 */
export async function firstRun(store: ControlStore, access: AccessAdmin, audit: AuditLog, options: { signInLinkHours?: number } = {}): Promise<FirstRun> {
  const org = await access.ensureDefaultOrg();
  const created = await accessTransaction(store, async (db) => {
    await lockNamed(db, store, 'first_owner');
    const owner = await db
      .selectFrom('members')
      .innerJoin('workspaces', 'workspaces.id', 'members.workspace_id')
      .innerJoin('member_roles', 'member_roles.member_id', 'members.id')
      .select('members.id')
      .where('workspaces.org_id', '=', org.id)
      .where('member_roles.role', '=', 'owner')
      .executeTakeFirst();
    if (owner) return undefined;
    const web =
      (await db.selectFrom('workspaces').select('id').where('org_id', '=', org.id).where('kind', '=', 'web').where('external_id', '=', WEB_WORKSPACE_EXTERNAL_ID).executeTakeFirst()) ??
      (await createWorkspace(db, { orgId: org.id, kind: 'web', externalId: WEB_WORKSPACE_EXTERNAL_ID, name: 'Web' }));
    const member = await createMemberIn(db, { workspaceId: web.id, externalId: 'owner', displayName: 'Owner', hasAccount: true, roles: ['owner'] });
    // Somewhere to talk to the agent from the first minute (`tagbox chat`).
    const general = await db.selectFrom('channels').select('id').where('workspace_id', '=', web.id).where('external_id', '=', 'general').executeTakeFirst();
    if (!general) await createChannel(db, { workspaceId: web.id, externalId: 'general', name: 'general' });
    const { token, record } = await createToken(db, { orgId: org.id, memberId: member.id, role: 'owner', name: 'first-run', createdBy: 'system' });
    // The browser's way in, made with the token so that exactly one process has both to print.
    const link = await createLinkIn(db, { orgId: org.id, memberId: member.id, createdBy: 'system', hours: options.signInLinkHours ?? 24 });
    return { token, memberId: member.id, tokenId: record.id, workspaceId: web.id, link };
  });
  if (!created) return { org };
  await audit.appendMany([
    { type: 'admin-change', actor: 'system', outcome: 'ok', action: 'create', target: `member:${created.memberId}`, fields: ['roles'], roles: ['owner'] },
    { type: 'admin-change', actor: 'system', outcome: 'ok', action: 'token.create', target: `token:${created.tokenId}`, member: created.memberId, role: 'owner', name: 'first-run' },
    { type: 'admin-change', actor: 'system', outcome: 'ok', org: org.id, action: 'login-link.create', target: `member:${created.memberId}`, link: created.link.id, expiresAt: created.link.expiresAt },
  ]);
  return { org, ownerToken: created.token, ownerMemberId: created.memberId, ownerSignInToken: created.link.token, ownerSignInExpiresAt: created.link.expiresAt };
}
