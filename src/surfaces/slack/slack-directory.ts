import type { WebClient } from '@slack/web-api';
import type { Kysely } from 'kysely';
import { createMember, findMemberByExternalId, getMember, updateMemberProfile } from '../../access/members-repo.js';
import type { Channel, Member } from '../../access/model.js';
import { createChannel, findChannelByExternalId } from '../../access/workspaces-repo.js';
import { isUniqueViolation } from '../../store/constraint-errors.js';
import type { Database } from '../../store/tables.js';
import { recordSlackUser, slackUserSeen } from './slack-users-repo.js';
import type { SlackWorkspace } from './model.js';

/**
 * Slack's people and channels as Tagbox members and channels. A Slack user is
 * a member of the workspace (externalId = the user id), read with users.info
 * and read again after `slack.userRefreshMinutes`: name, guest flags
 * (single- and multi-channel guests are guests), deactivation, bots. Roles and
 * the org account are Tagbox's: an admin links an account by creating the
 * member (POST /workspaces/{id}/members with the Slack user id and
 * hasAccount), or the person links it by having signed in to the web app with
 * the email Slack shows for them (a verified email of a member with an account).
 */
export type MemberLookup = { member: Member } | { ignore: string } | { refuse: string };

export class SlackDirectory {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly refreshMinutes: number,
  ) {}

  async member(workspace: SlackWorkspace, client: WebClient, userId: string): Promise<MemberLookup> {
    const known = await findMemberByExternalId(this.db, workspace.workspaceId, userId);
    const seen = known && (await slackUserSeen(this.db, known.id));
    if (known && seen && Date.now() - Date.parse(seen.refreshedAt) < this.refreshMinutes * 60_000) {
      if (seen.isBot) return { ignore: 'a bot user wrote it' };
      if (seen.deleted) return { refuse: 'Your Slack account is deactivated.' };
      return { member: known };
    }
    const info = await client.users.info({ user: userId });
    const user = info.user;
    if (!user) return known ? { member: known } : { refuse: 'Tagbox could not read your Slack profile.' };
    const displayName = (user.profile?.display_name || user.real_name || user.name || userId).slice(0, 200);
    const isGuest = Boolean(user.is_restricted || user.is_ultra_restricted);
    const linked = await this.hasLinkedAccount(workspace.orgId, user.profile?.email);
    let member = known;
    if (!member) {
      try {
        member = await createMember(this.db, { workspaceId: workspace.workspaceId, externalId: userId, displayName, isGuest, hasAccount: linked });
      } catch (error) {
        // Two events of one new user at once: the other made the member.
        if (!isUniqueViolation(error)) throw error;
        member = (await findMemberByExternalId(this.db, workspace.workspaceId, userId))!;
      }
    } else {
      await updateMemberProfile(this.db, member.id, { displayName, isGuest, ...(linked ? { hasAccount: true as const } : {}) });
      member = (await getMember(this.db, member.id))!;
    }
    await recordSlackUser(this.db, member.id, { deleted: Boolean(user.deleted), isBot: Boolean(user.is_bot) });
    if (user.is_bot) return { ignore: 'a bot user wrote it' };
    if (user.deleted) return { refuse: 'Your Slack account is deactivated.' };
    return { member };
  }

  /** The Tagbox channel of a Slack channel, made on first use (conversations.info for its name and privacy). */
  async channel(workspace: SlackWorkspace, client: WebClient, slackChannel: string): Promise<Channel> {
    const existing = await this.findChannel(workspace.workspaceId, slackChannel);
    if (existing) return existing;
    const info = await client.conversations.info({ channel: slackChannel });
    const name = (info.channel?.name ?? slackChannel).slice(0, 200);
    try {
      return await createChannel(this.db, { workspaceId: workspace.workspaceId, externalId: slackChannel, name, isPrivate: Boolean(info.channel?.is_private) });
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      return (await this.findChannel(workspace.workspaceId, slackChannel))!;
    }
  }

  private findChannel(workspaceId: string, slackChannel: string): Promise<Channel | undefined> {
    return findChannelByExternalId(this.db, workspaceId, slackChannel);
  }

  /** A verified email (from signing in to the web app) of a member of the org who has an account. */
  private async hasLinkedAccount(orgId: string, email: string | undefined): Promise<boolean> {
    if (!email) return false;
    const row = await this.db
      .selectFrom('member_emails')
      .innerJoin('members', 'members.id', 'member_emails.member_id')
      .innerJoin('workspaces', 'workspaces.id', 'members.workspace_id')
      .select('members.id')
      .where('member_emails.email', '=', email.toLowerCase())
      .where('members.has_account', '=', 1)
      .where('workspaces.org_id', '=', orgId)
      .executeTakeFirst();
    return row !== undefined;
  }
}
