import type { Kysely } from 'kysely';
import type { Database } from '../../store/tables.js';
import { WEB_WORKSPACE_EXTERNAL_ID } from '../first-run.js';

/** The org's built-in web workspace (first-run.ts makes it), where invited people become members. */
export async function webWorkspaceId(db: Kysely<Database>, orgId: string): Promise<string | undefined> {
  const row = await db.selectFrom('workspaces').select('id').where('org_id', '=', orgId).where('kind', '=', 'web').where('external_id', '=', WEB_WORKSPACE_EXTERNAL_ID).executeTakeFirst();
  return row?.id;
}
