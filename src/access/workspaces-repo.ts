import type { Kysely, Selectable } from 'kysely';
import type { ChannelsTable, Database, WorkspacesTable } from '../store/tables.js';
import { newId, nowIso } from '../util/ids.js';
import type { Channel, Workspace, WorkspaceKind } from './model.js';

/** Workspaces and their channels: one aggregate, since a channel never moves. */
export async function createWorkspace(
  db: Kysely<Database>,
  input: { orgId: string; kind: WorkspaceKind; externalId: string; name: string },
): Promise<Workspace> {
  const row = { id: newId(), org_id: input.orgId, kind: input.kind, external_id: input.externalId, name: input.name, created_at: nowIso() };
  await db.insertInto('workspaces').values(row).execute();
  return toWorkspace(row);
}

export async function getWorkspace(db: Kysely<Database>, id: string): Promise<Workspace | undefined> {
  const row = await withSlack(db).where('workspaces.id', '=', id).executeTakeFirst();
  return row && toWorkspace(row);
}

export async function listWorkspaces(db: Kysely<Database>, orgId: string): Promise<Workspace[]> {
  return (await withSlack(db).where('workspaces.org_id', '=', orgId).orderBy('workspaces.name').execute()).map(toWorkspace);
}

/** A workspace with its Slack settings, when it is a Slack team (vault names only). */
function withSlack(db: Kysely<Database>) {
  return db
    .selectFrom('workspaces')
    .leftJoin('slack_workspaces', 'slack_workspaces.workspace_id', 'workspaces.id')
    .selectAll('workspaces')
    .select(['slack_workspaces.mode as slack_mode', 'slack_workspaces.bot_token_secret as slack_bot', 'slack_workspaces.app_token_secret as slack_app']);
}

export async function createChannel(
  db: Kysely<Database>,
  input: { workspaceId: string; externalId: string; name: string; isPrivate?: boolean },
): Promise<Channel> {
  const row = {
    id: newId(),
    workspace_id: input.workspaceId,
    external_id: input.externalId,
    name: input.name,
    is_private: input.isPrivate ? 1 : 0,
    created_at: nowIso(),
    engine: null,
    instructions: null,
  };
  await db.insertInto('channels').values(row).execute();
  return toChannel(row);
}

export async function getChannel(db: Kysely<Database>, id: string): Promise<Channel | undefined> {
  const row = await db.selectFrom('channels').selectAll().where('id', '=', id).executeTakeFirst();
  return row && toChannel(row);
}

export async function listChannels(db: Kysely<Database>, workspaceId: string): Promise<Channel[]> {
  return (await db.selectFrom('channels').selectAll().where('workspace_id', '=', workspaceId).orderBy('name').execute()).map(toChannel);
}

type WorkspaceRow = Selectable<WorkspacesTable> & { slack_mode?: string | null; slack_bot?: string | null; slack_app?: string | null };

function toWorkspace(row: WorkspaceRow): Workspace {
  const slack =
    row.slack_mode && row.slack_bot
      ? { slack: { mode: row.slack_mode as 'socket' | 'events', botTokenSecret: row.slack_bot, ...(row.slack_app ? { appTokenSecret: row.slack_app } : {}) } }
      : {};
  return { id: row.id, orgId: row.org_id, kind: row.kind as WorkspaceKind, externalId: row.external_id, name: row.name, createdAt: row.created_at, ...slack };
}

function toChannel(row: Selectable<ChannelsTable>): Channel {
  return {
    id: row.id,
    workspaceId: row.workspace_id,
    externalId: row.external_id,
    name: row.name,
    isPrivate: row.is_private === 1,
    createdAt: row.created_at,
    ...(row.engine ? { engine: row.engine } : {}),
    ...(row.instructions ? { instructions: row.instructions } : {}),
  };
}

export async function findChannelByExternalId(db: Kysely<Database>, workspaceId: string, externalId: string): Promise<Channel | undefined> {
  const row = await db.selectFrom('channels').selectAll().where('workspace_id', '=', workspaceId).where('external_id', '=', externalId).executeTakeFirst();
  return row && toChannel(row);
}
