import type { Kysely } from 'kysely';
import type { Database } from '../../store/tables.js';
import { nowIso } from '../../util/ids.js';

/** When a member's Slack profile was last read (users.info), and what it said of deactivation and bots. */
export interface SlackUserSeen {
  deleted: boolean;
  isBot: boolean;
  refreshedAt: string;
}

export async function slackUserSeen(db: Kysely<Database>, memberId: string): Promise<SlackUserSeen | undefined> {
  const row = await db.selectFrom('slack_users').selectAll().where('member_id', '=', memberId).executeTakeFirst();
  return row && { deleted: row.deleted === 1, isBot: row.is_bot === 1, refreshedAt: row.refreshed_at };
}

export async function recordSlackUser(db: Kysely<Database>, memberId: string, seen: { deleted: boolean; isBot: boolean }): Promise<void> {
  const row = { member_id: memberId, deleted: seen.deleted ? 1 : 0, is_bot: seen.isBot ? 1 : 0, refreshed_at: nowIso() };
  await db.insertInto('slack_users').values(row).onConflict((oc) => oc.column('member_id').doUpdateSet(row)).execute();
}
