import type { Kysely } from 'kysely';
import type { Database, OrgRow } from '../store/tables.js';
import { newId, nowIso } from '../util/ids.js';
import type { MemberAccessPolicy, Org } from './model.js';

export type OrgSettings = Pick<Org, 'memberAccess' | 'memberAccessRoles' | 'dmsAllowed' | 'retentionDays' | 'zeroDataRetention' | 'instructions'>;

export const DEFAULT_ORG_SETTINGS: OrgSettings = {
  memberAccess: 'anyone',
  memberAccessRoles: [],
  dmsAllowed: true,
  retentionDays: 365,
  zeroDataRetention: false,
  instructions: '',
};

export async function createOrg(db: Kysely<Database>, name: string, settings: Partial<OrgSettings> = {}): Promise<Org> {
  const s = { ...DEFAULT_ORG_SETTINGS, ...settings };
  const now = nowIso();
  const row: OrgRow = {
    id: newId(),
    name,
    member_access: s.memberAccess,
    member_access_roles: JSON.stringify(s.memberAccessRoles),
    dms_allowed: s.dmsAllowed ? 1 : 0,
    retention_days: s.retentionDays,
    zero_data_retention: s.zeroDataRetention ? 1 : 0,
    created_at: now,
    updated_at: now,
    instructions: s.instructions || null,
  };
  await db.insertInto('orgs').values(row).execute();
  return toOrg(row);
}

export async function getOrg(db: Kysely<Database>, id: string): Promise<Org | undefined> {
  const row = await db.selectFrom('orgs').selectAll().where('id', '=', id).executeTakeFirst();
  return row && toOrg(row);
}

export async function listOrgs(db: Kysely<Database>): Promise<Org[]> {
  return (await db.selectFrom('orgs').selectAll().orderBy('created_at').execute()).map(toOrg);
}

export async function updateOrgSettings(db: Kysely<Database>, id: string, changes: Partial<OrgSettings>): Promise<Org | undefined> {
  await db
    .updateTable('orgs')
    .set({
      ...(changes.memberAccess !== undefined && { member_access: changes.memberAccess }),
      ...(changes.memberAccessRoles !== undefined && { member_access_roles: JSON.stringify(changes.memberAccessRoles) }),
      ...(changes.dmsAllowed !== undefined && { dms_allowed: changes.dmsAllowed ? 1 : 0 }),
      ...(changes.retentionDays !== undefined && { retention_days: changes.retentionDays }),
      ...(changes.zeroDataRetention !== undefined && { zero_data_retention: changes.zeroDataRetention ? 1 : 0 }),
      ...(changes.instructions !== undefined && { instructions: changes.instructions || null }),
      updated_at: nowIso(),
    })
    .where('id', '=', id)
    .execute();
  return getOrg(db, id);
}

function toOrg(row: OrgRow): Org {
  return {
    id: row.id,
    name: row.name,
    memberAccess: row.member_access as MemberAccessPolicy,
    memberAccessRoles: JSON.parse(row.member_access_roles) as string[],
    dmsAllowed: row.dms_allowed === 1,
    retentionDays: row.retention_days,
    zeroDataRetention: row.zero_data_retention === 1,
    instructions: row.instructions ?? '',
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
