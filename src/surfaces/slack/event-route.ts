/**
 * What a Slack event is to Tagbox (pure, no I/O): a person's message that may
 * concern the agent, or something to ignore and why. Whether it does concern
 * the agent (a tag, a DM, a reply in one of its threads) is decided by the
 * inbound step, which knows the threads; everything decidable from the event
 * alone is decided here.
 *
 * `app_mention` and `message` describe the same message when both are
 * subscribed: a message that tags the bot is treated as a mention whichever
 * arrives, so the two collapse on (channel, ts) and nothing depends on order.
 */
export type ChannelType = 'channel' | 'group' | 'im' | 'mpim';

export interface SlackFileRef {
  id: string;
  name: string;
  size: number;
  url: string;
}

export interface PersonMessage {
  kind: 'message';
  channel: string;
  channelType: ChannelType;
  user: string;
  /** As Slack sent it (escaped, with mentions); see slack-markup.ts. */
  text: string;
  ts: string;
  /** The thread's root ts; absent for a top-level message. */
  threadTs?: string;
  /** The bot is tagged in it. */
  mentioned: boolean;
  files: SlackFileRef[];
}

export type SlackRoute = PersonMessage | { kind: 'ignore'; why: string };

/** Subtypes that are still a person's message (a file shared with a comment, a reply also sent to the channel). */
const PERSON_SUBTYPES = new Set(['file_share', 'thread_broadcast']);

const TS = /^\d{1,12}\.\d{1,9}$/;
const ID = /^[A-Z0-9]{2,40}$/;

export function routeEvent(event: unknown, botUserId: string | undefined): SlackRoute {
  if (!isObject(event)) return ignore('the event is not an object');
  const type = event.type;
  if (type !== 'message' && type !== 'app_mention') return ignore(`event type ${String(type)} is not handled`);
  if (typeof event.subtype === 'string' && !PERSON_SUBTYPES.has(event.subtype)) return ignore(`message subtype ${event.subtype}`);
  if (event.bot_id !== undefined || event.bot_profile !== undefined) return ignore('a bot wrote it');
  const { user, channel, ts } = event;
  if (typeof user !== 'string' || !ID.test(user)) return ignore('no user');
  if (botUserId && user === botUserId) return ignore("the agent's own message");
  if (typeof channel !== 'string' || !ID.test(channel)) return ignore('no channel');
  if (typeof ts !== 'string' || !TS.test(ts)) return ignore('no ts');
  const threadTs = typeof event.thread_ts === 'string' && TS.test(event.thread_ts) ? event.thread_ts : undefined;
  const text = typeof event.text === 'string' ? event.text : '';
  const mentioned = type === 'app_mention' || (botUserId !== undefined && text.includes(`<@${botUserId}>`));
  return {
    kind: 'message',
    channel,
    channelType: channelTypeOf(event.channel_type, channel),
    user,
    text,
    ts,
    ...(threadTs && threadTs !== ts ? { threadTs } : {}),
    mentioned,
    files: filesOf(event.files),
  };
}

/** The key two deliveries of one message share: Slack's (channel, ts). */
export function messageKey(channel: string, ts: string): string {
  return `${channel}:${ts}`;
}

/** `app_mention` carries no channel_type: Slack's id prefixes tell (D: a DM, G: private or group DM, C: public). */
function channelTypeOf(value: unknown, channel: string): ChannelType {
  if (value === 'channel' || value === 'group' || value === 'im' || value === 'mpim') return value;
  return channel.startsWith('D') ? 'im' : channel.startsWith('G') ? 'group' : 'channel';
}

function filesOf(value: unknown): SlackFileRef[] {
  if (!Array.isArray(value)) return [];
  const out: SlackFileRef[] = [];
  for (const f of value.slice(0, 20)) {
    if (!isObject(f) || typeof f.id !== 'string' || typeof f.url_private_download !== 'string') continue;
    out.push({ id: f.id, name: typeof f.name === 'string' ? f.name : f.id, size: typeof f.size === 'number' ? f.size : 0, url: f.url_private_download });
  }
  return out;
}

function ignore(why: string): SlackRoute {
  return { kind: 'ignore', why };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
