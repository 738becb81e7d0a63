import type { Kysely } from 'kysely';
import type { Database } from '../store/tables.js';
import { newId, nowIso } from '../util/ids.js';
import { randomSecret, sha256Hex } from './bearer-secrets.js';
import type { Role } from './roles.js';

/**
 * API tokens: `tbx_` + 32 random bytes (base64url). Only the SHA-256 is stored,
 * so neither the database nor a backup of it lets anyone sign in.
 */
export interface ApiToken {
  id: string;
  orgId: string;
  memberId: string;
  role: Role;
  name: string;
  createdBy: string;
  createdAt: string;
  lastUsedAt: string | null;
}

export const TOKEN_PREFIX = 'tbx_';


export async function createToken(
  db: Kysely<Database>,
  input: { orgId: string; memberId: string; role: Role; name: string; createdBy: string },
): Promise<{ token: string; record: ApiToken }> {
  const token = randomSecret(TOKEN_PREFIX);
  const record: ApiToken = { id: newId(), ...input, createdAt: nowIso(), lastUsedAt: null };
  await db
    .insertInto('api_tokens')
    .values({
      id: record.id,
      org_id: record.orgId,
      member_id: record.memberId,
      role: record.role,
      name: record.name,
      token_hash: sha256Hex(token),
      created_by: record.createdBy,
      created_at: record.createdAt,
      last_used_at: null,
    })
    .execute();
  return { token, record };
}

/** The token's record, or undefined for an unknown (or revoked) token. */
export async function findToken(db: Kysely<Database>, token: string): Promise<ApiToken | undefined> {
  if (!token.startsWith(TOKEN_PREFIX)) return undefined;
  const row = await db.selectFrom('api_tokens').selectAll().where('token_hash', '=', sha256Hex(token)).executeTakeFirst();
  return row && toToken(row);
}

export async function touchToken(db: Kysely<Database>, id: string): Promise<void> {
  await db.updateTable('api_tokens').set({ last_used_at: nowIso() }).where('id', '=', id).execute();
}

export async function listTokens(db: Kysely<Database>, orgId: string, memberId?: string): Promise<ApiToken[]> {
  let q = db.selectFrom('api_tokens').selectAll().where('org_id', '=', orgId);
  if (memberId) q = q.where('member_id', '=', memberId);
  return (await q.orderBy('created_at').execute()).map(toToken);
}

export async function getTokenById(db: Kysely<Database>, orgId: string, id: string): Promise<ApiToken | undefined> {
  const row = await db.selectFrom('api_tokens').selectAll().where('org_id', '=', orgId).where('id', '=', id).executeTakeFirst();
  return row && toToken(row);
}

/** Token names are unique per member. */
export async function hasTokenNamed(db: Kysely<Database>, memberId: string, name: string): Promise<boolean> {
  return (await db.selectFrom('api_tokens').select('id').where('member_id', '=', memberId).where('name', '=', name).executeTakeFirst()) !== undefined;
}

export async function deleteToken(db: Kysely<Database>, id: string): Promise<boolean> {
  const result = await db.deleteFrom('api_tokens').where('id', '=', id).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

function toToken(row: {
  id: string;
  org_id: string;
  member_id: string;
  role: string;
  name: string;
  created_by: string;
  created_at: string;
  last_used_at: string | null;
}): ApiToken {
  return {
    id: row.id,
    orgId: row.org_id,
    memberId: row.member_id,
    role: row.role as Role,
    name: row.name,
    createdBy: row.created_by,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
  };
}
