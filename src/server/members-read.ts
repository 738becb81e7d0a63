import type { Kysely } from 'kysely';
import type { Member } from '../access/model.js';
import type { Database } from '../store/tables.js';

/** Members of one workspace with their roles (a read; writes go through AccessAdmin). */
export async function listMembers(db: Kysely<Database>, workspaceId: string): Promise<Member[]> {
  const rows = await db.selectFrom('members').selectAll().where('workspace_id', '=', workspaceId).orderBy('created_at').execute();
  if (rows.length === 0) return [];
  const roles = await db
    .selectFrom('member_roles')
    .select(['member_id', 'role'])
    .where(
      'member_id',
      'in',
      rows.map((r) => r.id),
    )
    .orderBy('role')
    .execute();
  return rows.map((r) => ({
    id: r.id,
    workspaceId: r.workspace_id,
    externalId: r.external_id,
    displayName: r.display_name,
    hasAccount: r.has_account === 1,
    isGuest: r.is_guest === 1,
    roles: roles.filter((x) => x.member_id === r.id).map((x) => x.role),
    createdAt: r.created_at,
  }));
}
