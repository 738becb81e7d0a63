import type { Kysely } from 'kysely';
import { getMember } from '../access/members-repo.js';
import { getChannel } from '../access/workspaces-repo.js';
import type { Database } from '../store/tables.js';
import { neutralise } from '../util/output-limits.js';
import type { Session, Turn } from './model.js';

/**
 * Who a turn's work is credited to, outside the sandbox: the member who
 * asked (a schedule's turn: its creator), the place they asked in, and the
 * branch the thread's pushes go to. Given to every command of the turn as
 * environment variables, which the git hook Tagbox mounts reads
 * (`Co-authored-by:` on each commit) and which the agent puts at the end of a
 * pull request's body. Read when the turn starts.
 */
export interface TurnCredit {
  /** The member's name, as the chat shows it. */
  name: string;
  /** A verified email of theirs, when Tagbox knows one (GitHub links a co-author by email). */
  email?: string;
  /** `#eng`, or `a direct message`. */
  place: string;
  thread: string;
  /** `tagbox/<thread>`: the branch the default push policy expects. */
  branch: string;
}

export const GIT_HOOKS_INSIDE = '/opt/tagbox/git-hooks';

export async function turnCredit(db: Kysely<Database>, session: Session, turn: Turn): Promise<TurnCredit | undefined> {
  const memberId = turn.triggeredBy ?? session.createdBy;
  const member = memberId ? await getMember(db, memberId) : undefined;
  if (!member) return undefined;
  const email = await db.selectFrom('member_emails').select('email').where('member_id', '=', member.id).orderBy('created_at').executeTakeFirst();
  const channel = session.place.kind === 'channel' ? await getChannel(db, session.place.channelId) : undefined;
  // The channel's name is an admin's text: one line, like the member's, or it could add a trailer of its own.
  const place = session.place.kind === 'channel' ? (channel?.name ? `#${plain(channel.name)}` : 'a channel') : 'a direct message';
  return { name: plain(member.displayName), ...(email ? { email: plain(email.email) } : {}), place, thread: session.id, branch: `tagbox/${session.id}` };
}

/** The credit line a pull request's body ends with. */
export function creditLine(credit: TurnCredit): string {
  return `Requested by ${credit.name} in ${credit.place} (Tagbox thread ${credit.thread}).`;
}

/**
 * The turn's environment: where the credit goes, and git told to run
 * Tagbox's hooks (GIT_CONFIG_* is git's own way to set configuration from
 * the environment, above every config file).
 */
export function creditEnvironment(credit: TurnCredit | undefined, thread: string): Record<string, string> {
  const base = { TAGBOX_THREAD: thread, TAGBOX_BRANCH: `tagbox/${thread}`, GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'core.hooksPath', GIT_CONFIG_VALUE_0: GIT_HOOKS_INSIDE };
  if (!credit) return base;
  return {
    ...base,
    TAGBOX_REQUESTED_BY: credit.email ? `${credit.name} <${credit.email}>` : credit.name,
    TAGBOX_REQUESTED_IN: credit.place,
    TAGBOX_CREDIT: creditLine(credit),
    ...(credit.email ? { TAGBOX_CO_AUTHOR: `${credit.name} <${credit.email}>` } : {}),
  };
}

/**
 * The commit-msg hook: adds the trailer that credits the member who asked —
 * `Co-authored-by:` when their email is known, else `Requested-by:` — once.
 */
export const COMMIT_MSG_HOOK = `#!/bin/sh
# Tagbox: credit the member who asked for this turn (docs/GITHUB.md).
if [ -n "$TAGBOX_CO_AUTHOR" ]; then
  exec git interpret-trailers --in-place --if-exists addIfDifferent --trailer "Co-authored-by: $TAGBOX_CO_AUTHOR" "$1"
elif [ -n "$TAGBOX_REQUESTED_BY" ]; then
  exec git interpret-trailers --in-place --if-exists addIfDifferent --trailer "Requested-by: $TAGBOX_REQUESTED_BY in $TAGBOX_REQUESTED_IN" "$1"
fi
`;

/**
 * A name or email as it may appear in a trailer, an environment variable and
 * a prompt: neutralised like all shown text (no terminal sequences, bidi
 * overrides), then one line without angle brackets.
 */
function plain(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what is removed
  return neutralise(text).replace(/[\0-\x1f\x7f<>]/g, ' ').replace(/ {2,}/g, ' ').trim().slice(0, 200);
}
