import type { Kysely } from 'kysely';
import type { Database } from '../../store/tables.js';
import { nowIso } from '../../util/ids.js';

/**
 * What was posted to Slack, by key (`answer:<turn>`, `notice:<session>:<seq>`,
 * `refusal:<channel>:<ts>`, `root:<session>` ...). A post is claimed before it
 * is sent and marked posted after; a claim still `posting` after a restart (or
 * a failed call) may or may not have reached Slack, which is why the key also
 * rides on the message's metadata: the thread is searched before posting again.
 */
export type SlackPostState = 'posting' | 'posted';

export interface SlackPost {
  workspaceId: string;
  key: string;
  channel: string;
  /** The message's ts once known (a stream has one while still `posting`). */
  ts: string | undefined;
  state: SlackPostState;
}

/** Claims `key`; returns the post as it now stands and whether this call made the claim. */
export async function claimPost(db: Kysely<Database>, input: { workspaceId: string; key: string; channel: string }): Promise<{ post: SlackPost; claimed: boolean }> {
  const result = await db
    .insertInto('slack_posts')
    .values({ workspace_id: input.workspaceId, key: input.key, channel: input.channel, ts: null, state: 'posting', updated_at: nowIso() })
    .onConflict((oc) => oc.columns(['workspace_id', 'key']).doNothing())
    .executeTakeFirst();
  if (Number(result.numInsertedOrUpdatedRows ?? 0n) === 1) return { post: { ...input, ts: undefined, state: 'posting' }, claimed: true };
  return { post: (await getPost(db, input.workspaceId, input.key))!, claimed: false };
}

export async function getPost(db: Kysely<Database>, workspaceId: string, key: string): Promise<SlackPost | undefined> {
  const row = await db.selectFrom('slack_posts').selectAll().where('workspace_id', '=', workspaceId).where('key', '=', key).executeTakeFirst();
  return row && { workspaceId: row.workspace_id, key: row.key, channel: row.channel, ts: row.ts ?? undefined, state: row.state as SlackPostState };
}

/** The message exists (its ts is known) but is not finished yet: a stream under way. */
export async function setPostTs(db: Kysely<Database>, workspaceId: string, key: string, ts: string): Promise<void> {
  await db.updateTable('slack_posts').set({ ts, updated_at: nowIso() }).where('workspace_id', '=', workspaceId).where('key', '=', key).execute();
}

export async function markPosted(db: Kysely<Database>, workspaceId: string, key: string, ts: string | undefined): Promise<void> {
  await db
    .updateTable('slack_posts')
    .set({ state: 'posted', ...(ts ? { ts } : {}), updated_at: nowIso() })
    .where('workspace_id', '=', workspaceId)
    .where('key', '=', key)
    .execute();
}
