import { actorFields, type ActorRef } from '../access/actor.js';
import { getMember } from '../access/members-repo.js';
import { getWorkspace } from '../access/workspaces-repo.js';
import type { AuditLog } from '../audit/log.js';
import type { ControlStore } from '../store/database.js';
import { withWriteTransaction } from '../store/write-transaction.js';
import type { Role } from './roles.js';
import { createToken, deleteToken, type ApiToken } from './tokens-repo.js';

/**
 * Minting and revoking API tokens: the row and its admin-change event in one
 * write transaction, so the record commits with the change or not at all.
 * Who may mint what is decided by the callers — the API (routes/tokens.ts: for
 * oneself only, never stronger than one's own role) and the operator's shell
 * (cli/token.ts: member role only) — and a token is always for `memberId`
 * itself: the actor recorded is who minted it, never the member it is for.
 */
export async function mintToken(
  store: ControlStore,
  audit: AuditLog,
  input: { orgId: string; memberId: string; role: Role; name: string; actor: ActorRef },
): Promise<{ token: string; record: ApiToken }> {
  const who = actorFields(input.actor);
  return withWriteTransaction(store, undefined, async (db) => {
    const minted = await createToken(db, { orgId: input.orgId, memberId: input.memberId, role: input.role, name: input.name, createdBy: who.actor });
    await audit.appendIn(db, [
      { type: 'admin-change', ...who, outcome: 'ok', org: input.orgId, action: 'token.create', target: `token:${minted.record.id}`, member: input.memberId, role: input.role, name: input.name },
    ]);
    return minted;
  });
}

export async function revokeToken(store: ControlStore, audit: AuditLog, token: ApiToken, actor: ActorRef): Promise<void> {
  await withWriteTransaction(store, undefined, async (db) => {
    if (!(await deleteToken(db, token.id))) return;
    await audit.appendIn(db, [{ type: 'admin-change', ...actorFields(actor), outcome: 'ok', org: token.orgId, action: 'token.revoke', target: `token:${token.id}`, member: token.memberId }]);
  });
}

/**
 * The operator path of CONTRACT.md (`tagbox token create --member ID`): a new
 * member-role token for that member, audited as the operator's action. Run on
 * the server's machine against its database: whoever can do that can already
 * write the database, so this adds no power; it makes the act visible.
 */
export async function mintOperatorToken(
  store: ControlStore,
  audit: AuditLog,
  input: { memberId: string; name: string; operator: string },
): Promise<{ token: string; record: ApiToken } | undefined> {
  const member = await getMember(store.db, input.memberId);
  const workspace = member && (await getWorkspace(store.db, member.workspaceId));
  if (!member || !workspace) return undefined;
  return mintToken(store, audit, { orgId: workspace.orgId, memberId: member.id, role: 'member', name: input.name, actor: input.operator });
}
