import { actorFields, type ActorRef } from '../../access/actor.js';
import { getMember } from '../../access/members-repo.js';
import { getWorkspace } from '../../access/workspaces-repo.js';
import type { AuditLog } from '../../audit/log.js';
import type { ControlStore } from '../../store/database.js';
import type { Database } from '../../store/tables.js';
import { withWriteTransaction } from '../../store/write-transaction.js';
import type { Kysely } from 'kysely';
import { consumeLinkIn, createLinkIn, type NewLink } from './signin-links.js';
import { createSessionIn, revokeSessionIn, type WebSession } from './web-sessions.js';

/**
 * Sign-in links and sessions with their audit events, each in one write
 * transaction (the record commits with the change or not at all). Who may mint
 * a link for whom is the callers' decision (routes: never for someone who
 * outranks you; the CLI: the operator, like `tagbox token create`). Neither a
 * link's token nor a cookie value ever reaches an audit event.
 */
export async function mintLink(store: ControlStore, audit: AuditLog, input: { orgId: string; memberId: string; actor: ActorRef; hours: number }): Promise<NewLink> {
  return withWriteTransaction(store, undefined, (db) => mintLinkIn(db, audit, input));
}

export async function mintLinkIn(db: Kysely<Database>, audit: AuditLog, input: { orgId: string; memberId: string; actor: ActorRef; hours: number }): Promise<NewLink> {
  const who = actorFields(input.actor);
  const link = await createLinkIn(db, { orgId: input.orgId, memberId: input.memberId, createdBy: who.actor, hours: input.hours });
  await audit.appendIn(db, [
    { type: 'admin-change', ...who, outcome: 'ok', org: input.orgId, action: 'login-link.create', target: `member:${input.memberId}`, link: link.id, expiresAt: link.expiresAt },
  ]);
  return link;
}

/** `tagbox login-link --member ID`: undefined when there is no such member. */
export async function mintOperatorLink(store: ControlStore, audit: AuditLog, input: { memberId: string; operator: string; hours: number }): Promise<NewLink | undefined> {
  const member = await getMember(store.db, input.memberId);
  const workspace = member && (await getWorkspace(store.db, member.workspaceId));
  if (!member || !workspace) return undefined;
  return mintLink(store, audit, { orgId: workspace.orgId, memberId: member.id, actor: input.operator, hours: input.hours });
}

/** Trades a link for a new session; undefined when the link is unknown, used or expired. */
export async function signInWithLink(store: ControlStore, audit: AuditLog, token: string, sessionHours: number): Promise<{ cookie: string; session: WebSession } | undefined> {
  return withWriteTransaction(store, undefined, async (db) => {
    const link = await consumeLinkIn(db, token);
    if (!link) return undefined;
    const created = await createSessionIn(db, { orgId: link.orgId, memberId: link.memberId, method: 'link', hours: sessionHours });
    await audit.appendIn(db, [
      { type: 'signin', actor: link.memberId, outcome: 'ok', org: link.orgId, action: 'signin', method: 'link', link: link.id, credential: `session:${created.session.id}` },
    ]);
    return created;
  });
}

/** A session for a member the caller already identified (OIDC). */
export async function openSession(store: ControlStore, audit: AuditLog, input: { orgId: string; memberId: string; method: 'oidc'; hours: number; detail: Record<string, string> }): Promise<{ cookie: string; session: WebSession }> {
  return withWriteTransaction(store, undefined, async (db) => {
    const created = await createSessionIn(db, { orgId: input.orgId, memberId: input.memberId, method: input.method, hours: input.hours });
    await audit.appendIn(db, [
      { type: 'signin', actor: input.memberId, outcome: 'ok', org: input.orgId, action: 'signin', method: input.method, ...input.detail, credential: `session:${created.session.id}` },
    ]);
    return created;
  });
}

export async function signOut(store: ControlStore, audit: AuditLog, session: { id: string; orgId: string; memberId: string }): Promise<void> {
  await withWriteTransaction(store, undefined, async (db) => {
    if (!(await revokeSessionIn(db, session.id))) return;
    await audit.appendIn(db, [{ type: 'signin', actor: session.memberId, outcome: 'ok', org: session.orgId, action: 'signout', credential: `session:${session.id}` }]);
  });
}
