import type { Member, Org } from './model.js';

/** Where someone tagged the agent. */
export type InvocationPlace = 'channel' | 'dm' | 'group-dm';

export type DenialReason = 'zero-data-retention' | 'group-dm-unsupported' | 'dms-off' | 'not-a-member' | 'role-required' | 'unknown-member';

export type InvocationCheck =
  | { allowed: true; identity: 'agent' | 'member' }
  | {
      allowed: false;
      reason: DenialReason;
      /** What the person sees. */
      message: string;
      /** `private`: only the asker sees it (an ephemeral notice); `thread`: posted where they asked. */
      visibility: 'private' | 'thread';
    };

export interface InvocationInput {
  org: Pick<Org, 'memberAccess' | 'memberAccessRoles' | 'dmsAllowed' | 'zeroDataRetention'>;
  /** Undefined when the surface could not identify the person. */
  member: Pick<Member, 'hasAccount' | 'isGuest' | 'roles'> | undefined;
  place: InvocationPlace;
}

/**
 * The invocation check: may this person use the agent here, and as whom?
 * Pure; the surface posts the message and audits the outcome. Checks run from
 * the org-wide to the personal, so the message names the broadest reason.
 *
 * Guests (single- or multi-channel guests of a Slack workspace) are decided by
 * the same rules as anyone else with one difference: a guest never counts as
 * "in a connected workspace" on their own — under `anyone` a guest needs an org
 * account, as under `members`. A guest cannot see the workspace's other
 * channels and is outside the organisation; granting them the agent's reach
 * (which is the channel's, not theirs) must be an explicit act: give them an
 * account (or, under `roles`, a listed role and an account).
 */
export function checkInvocation({ org, member, place }: InvocationInput): InvocationCheck {
  if (org.zeroDataRetention) {
    return deny(
      'zero-data-retention',
      'Tagbox is turned off here: this organisation requires zero data retention, and Tagbox keeps conversation transcripts and session memory to do its work.',
      place === 'channel' ? 'private' : 'thread',
    );
  }
  if (place === 'group-dm') {
    return deny('group-dm-unsupported', 'Tagbox does not work in group DMs. Mention it in a channel, or message it one-to-one.', 'thread');
  }
  if (place === 'dm' && !org.dmsAllowed) {
    return deny('dms-off', 'An admin has turned off direct messages with Tagbox in this organisation. Mention it in a channel instead.', 'thread');
  }
  if (!member) return deny('unknown-member', 'Tagbox could not tell who you are, so it cannot act for you.', 'private');
  const needsAccount = org.memberAccess === 'members' || org.memberAccess === 'roles' || member.isGuest;
  if (needsAccount && !member.hasAccount) {
    const why = member.isGuest && org.memberAccess === 'anyone' ? 'Guests need an organisation account to use Tagbox.' : 'Only members of the organisation can use Tagbox here.';
    return deny('not-a-member', `${why} Ask an admin for an account.`, 'private');
  }
  if (org.memberAccess === 'roles' && !member.roles.some((r) => org.memberAccessRoles.includes(r))) {
    const roles = org.memberAccessRoles.length ? org.memberAccessRoles.join(', ') : '(none configured)';
    return deny('role-required', `Only people with one of these roles can use Tagbox here: ${roles}. Ask an admin.`, 'private');
  }
  return { allowed: true, identity: place === 'dm' ? 'member' : 'agent' };
}

function deny(reason: DenialReason, message: string, visibility: 'private' | 'thread'): InvocationCheck {
  return { allowed: false, reason, message, visibility };
}
