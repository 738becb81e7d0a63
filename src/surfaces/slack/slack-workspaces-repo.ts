import type { Kysely } from 'kysely';
import type { Database } from '../../store/tables.js';
import { nowIso } from '../../util/ids.js';
import type { SlackMode, SlackWorkspace } from './model.js';

/** Slack workspaces' settings: one row beside each `kind: slack` workspace. */
export async function saveSlackSettings(
  db: Kysely<Database>,
  workspaceId: string,
  settings: { mode: SlackMode; botTokenSecret: string; appTokenSecret?: string },
): Promise<void> {
  const row = {
    workspace_id: workspaceId,
    mode: settings.mode,
    bot_token_secret: settings.botTokenSecret,
    app_token_secret: settings.appTokenSecret ?? null,
    updated_at: nowIso(),
  };
  await db
    .insertInto('slack_workspaces')
    .values({ ...row, bot_user_id: null })
    .onConflict((oc) => oc.column('workspace_id').doUpdateSet(row))
    .execute();
}

export async function setBotUserId(db: Kysely<Database>, workspaceId: string, botUserId: string): Promise<void> {
  await db.updateTable('slack_workspaces').set({ bot_user_id: botUserId, updated_at: nowIso() }).where('workspace_id', '=', workspaceId).execute();
}

export async function getSlackWorkspace(db: Kysely<Database>, workspaceId: string): Promise<SlackWorkspace | undefined> {
  const row = await query(db).where('w.id', '=', workspaceId).executeTakeFirst();
  return row && toSlackWorkspace(row);
}

/** The Slack workspace whose team id is `teamId` (an Events API delivery names its team). */
export async function findSlackWorkspaceByTeam(db: Kysely<Database>, teamId: string): Promise<SlackWorkspace | undefined> {
  const row = await query(db).where('w.external_id', '=', teamId).executeTakeFirst();
  return row && toSlackWorkspace(row);
}

export async function listSlackWorkspaces(db: Kysely<Database>): Promise<SlackWorkspace[]> {
  return (await query(db).orderBy('w.created_at').execute()).map(toSlackWorkspace);
}

function query(db: Kysely<Database>) {
  return db
    .selectFrom('slack_workspaces as s')
    .innerJoin('workspaces as w', 'w.id', 's.workspace_id')
    .select(['w.id', 'w.org_id', 'w.external_id', 'w.name', 's.mode', 's.bot_token_secret', 's.app_token_secret', 's.bot_user_id'])
    .where('w.kind', '=', 'slack');
}

type Row = { id: string; org_id: string; external_id: string; name: string; mode: string; bot_token_secret: string; app_token_secret: string | null; bot_user_id: string | null };

function toSlackWorkspace(row: Row): SlackWorkspace {
  return {
    workspaceId: row.id,
    orgId: row.org_id,
    teamId: row.external_id,
    name: row.name,
    mode: row.mode as SlackMode,
    botTokenSecret: row.bot_token_secret,
    ...(row.app_token_secret ? { appTokenSecret: row.app_token_secret } : {}),
    ...(row.bot_user_id ? { botUserId: row.bot_user_id } : {}),
  };
}
