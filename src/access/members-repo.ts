import type { Kysely, Selectable } from 'kysely';
import type { Database, MembersTable } from '../store/tables.js';
import { newId, nowIso } from '../util/ids.js';
import type { Member } from './model.js';

/** Members and their roles. */
export async function createMember(
  db: Kysely<Database>,
  input: { workspaceId: string; externalId: string; displayName: string; hasAccount?: boolean; isGuest?: boolean; roles?: string[] },
): Promise<Member> {
  return db.transaction().execute((trx) => createMemberIn(trx, input));
}

/** Inside a transaction the caller owns (AccessAdmin's). */
export async function createMemberIn(trx: Kysely<Database>, input: Parameters<typeof createMember>[1]): Promise<Member> {
  const row = {
    id: newId(),
    workspace_id: input.workspaceId,
    external_id: input.externalId,
    display_name: input.displayName,
    has_account: input.hasAccount ? 1 : 0,
    is_guest: input.isGuest ? 1 : 0,
    created_at: nowIso(),
  };
  const roles = [...new Set(input.roles ?? [])];
  await insertMemberIn(trx, row, roles);
  return toMember(row, roles);
}

async function insertMemberIn(trx: Kysely<Database>, row: Selectable<MembersTable>, roles: string[]): Promise<void> {
  await trx.insertInto('members').values(row).execute();
  if (roles.length) await trx.insertInto('member_roles').values(roles.map((role) => ({ member_id: row.id, role }))).execute();
}

export async function getMember(db: Kysely<Database>, id: string): Promise<Member | undefined> {
  const row = await db.selectFrom('members').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) return undefined;
  return toMember(row, await rolesOf(db, id));
}

export async function listMembers(db: Kysely<Database>, workspaceId: string): Promise<Member[]> {
  const rows = await db.selectFrom('members').selectAll().where('workspace_id', '=', workspaceId).orderBy('display_name').orderBy('id').execute();
  const roles = new Map<string, string[]>();
  if (rows.length) {
    for (const r of await db.selectFrom('member_roles').innerJoin('members', 'members.id', 'member_roles.member_id').select(['member_roles.member_id', 'member_roles.role']).where('members.workspace_id', '=', workspaceId).execute()) {
      roles.set(r.member_id, [...(roles.get(r.member_id) ?? []), r.role]);
    }
  }
  return rows.map((row) => toMember(row, roles.get(row.id) ?? []));
}

export async function findMemberByExternalId(db: Kysely<Database>, workspaceId: string, externalId: string): Promise<Member | undefined> {
  const row = await db
    .selectFrom('members')
    .selectAll()
    .where('workspace_id', '=', workspaceId)
    .where('external_id', '=', externalId)
    .executeTakeFirst();
  return row && toMember(row, await rolesOf(db, row.id));
}

export async function setMemberRoles(db: Kysely<Database>, memberId: string, roles: string[]): Promise<void> {
  await db.transaction().execute((trx) => setMemberRolesIn(trx, memberId, roles));
}

/** Inside a transaction the caller owns. */
export async function setMemberRolesIn(trx: Kysely<Database>, memberId: string, roles: string[]): Promise<void> {
  const unique = [...new Set(roles)];
  await trx.deleteFrom('member_roles').where('member_id', '=', memberId).execute();
  if (unique.length) await trx.insertInto('member_roles').values(unique.map((role) => ({ member_id: memberId, role }))).execute();
}

/** How many members of the org hold the owner role. */
export async function countOwners(db: Kysely<Database>, orgId: string): Promise<number> {
  const row = await db
    .selectFrom('member_roles')
    .innerJoin('members', 'members.id', 'member_roles.member_id')
    .innerJoin('workspaces', 'workspaces.id', 'members.workspace_id')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('workspaces.org_id', '=', orgId)
    .where('member_roles.role', '=', 'owner')
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

async function rolesOf(db: Kysely<Database>, memberId: string): Promise<string[]> {
  const rows = await db.selectFrom('member_roles').select('role').where('member_id', '=', memberId).orderBy('role').execute();
  return rows.map((r) => r.role);
}

function toMember(row: Selectable<MembersTable>, roles: string[]): Member {
  return {
    id: row.id,
    workspaceId: row.workspace_id,
    externalId: row.external_id,
    displayName: row.display_name,
    hasAccount: row.has_account === 1,
    isGuest: row.is_guest === 1,
    roles: [...roles].sort(),
    createdAt: row.created_at,
  };
}

/** A surface's refresh of who someone is (Slack's users.info): name and guest flag, never roles or account. */
export async function updateMemberProfile(db: Kysely<Database>, memberId: string, profile: { displayName: string; isGuest: boolean; hasAccount?: true }): Promise<void> {
  await db
    .updateTable('members')
    .set({ display_name: profile.displayName, is_guest: profile.isGuest ? 1 : 0, ...(profile.hasAccount ? { has_account: 1 } : {}) })
    .where('id', '=', memberId)
    .execute();
}
