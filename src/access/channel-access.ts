import type { Kysely } from 'kysely';
import type { Database } from '../store/tables.js';
import { nowIso } from '../util/ids.js';
import type { Channel, Member } from './model.js';

/**
 * Who may talk to the agent in a channel (and read its threads): members of
 * the channel's workspace; for a private channel, only its listed members.
 * This is about seeing and posting, not about what the agent may reach: a
 * channel's capability never depends on who asked (invariant 5).
 */
export async function mayUseChannel(db: Kysely<Database>, member: Pick<Member, 'id' | 'workspaceId'>, channel: Channel): Promise<boolean> {
  if (member.workspaceId !== channel.workspaceId) return false;
  if (!channel.isPrivate) return true;
  return (await isChannelMember(db, channel.id, member.id));
}

export async function isChannelMember(db: Kysely<Database>, channelId: string, memberId: string): Promise<boolean> {
  const row = await db.selectFrom('channel_members').select('member_id').where('channel_id', '=', channelId).where('member_id', '=', memberId).executeTakeFirst();
  return row !== undefined;
}

/** Idempotent: adding a member twice leaves one row. */
export async function addChannelMember(db: Kysely<Database>, channelId: string, memberId: string): Promise<void> {
  await db
    .insertInto('channel_members')
    .values({ channel_id: channelId, member_id: memberId, created_at: nowIso() })
    .onConflict((oc) => oc.columns(['channel_id', 'member_id']).doNothing())
    .execute();
}

export async function removeChannelMember(db: Kysely<Database>, channelId: string, memberId: string): Promise<boolean> {
  const result = await db.deleteFrom('channel_members').where('channel_id', '=', channelId).where('member_id', '=', memberId).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

export async function listChannelMembers(db: Kysely<Database>, channelId: string): Promise<string[]> {
  return (await db.selectFrom('channel_members').select('member_id').where('channel_id', '=', channelId).orderBy('created_at').execute()).map((r) => r.member_id);
}
