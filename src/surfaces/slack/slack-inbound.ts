import type { WebClient } from '@slack/web-api';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { findMemberByExternalId } from '../../access/members-repo.js';
import { isTagboxError } from '../../errors.js';
import { getSession } from '../../sessions/sessions-repo.js';
import type { Invocation, InvocationPlaceRef, InvocationPort } from '../../sessions/invocation.js';
import type { Database } from '../../store/tables.js';
import { messageKey, routeEvent, type PersonMessage } from './event-route.js';
import type { SlackThreadRef, SlackWorkspace } from './model.js';
import type { SlackDirectory } from './slack-directory.js';
import { finishDelivery, recordDelivery, type InboxEntry } from './slack-inbox-repo.js';
import { attachFiles, fetchMessageFiles, filesNote, type Fetch } from './slack-files.js';
import { plainText } from './slack-markup.js';
import { bindThread, findThreadByTs } from './slack-threads-repo.js';

/** What the inbound step needs of the replies side (reply-poster.ts). */
export interface SlackRepliesPort {
  /** The receipt: a reaction on the person's message. */
  acknowledge(workspaceId: string, channel: string, ts: string): Promise<void>;
  /** A refusal in the thread, once per key. */
  postRefusal(workspaceId: string, channel: string, threadTs: string, text: string, key: string): Promise<unknown>;
}

export interface InboundDeps {
  db: Kysely<Database>;
  port: InvocationPort;
  directory: SlackDirectory;
  replies: SlackRepliesPort;
  logger: Logger;
}

/** A workspace as the inbound step sees it: its settings, its Web API client, the bot's user id. */
export interface ConnectedWorkspace {
  workspace: SlackWorkspace;
  client: WebClient;
  botUserId: string;
  /** The workspace's transport's fetch (through its proxy listener: files.slack.com gets the bot token there). */
  fetch: Fetch;
}

/** How much of a thread is read for context when the agent is tagged in its middle. */
const CONTEXT_MESSAGES = 100;

/**
 * Slack -> Invocation: the surface's half of the request path. `receive`
 * records a delivery (deduplicated) so that it can be acknowledged at once;
 * `process` turns it into an Invocation for the session layer, or ignores it,
 * or answers with a refusal — always in the thread it came from.
 */
export class SlackInbound {
  constructor(private readonly deps: InboundDeps) {}

  /** Records an `events_api` payload; undefined when it is a duplicate, a retry, or nothing Tagbox acts on. */
  async receive(ws: ConnectedWorkspace, payload: unknown): Promise<InboxEntry | undefined> {
    const envelope = asObject(payload);
    const eventId = typeof envelope?.event_id === 'string' ? envelope.event_id.slice(0, 100) : undefined;
    if (!envelope || !eventId) return undefined;
    const route = routeEvent(envelope.event, ws.botUserId);
    // The agent's own posts and other bots' are the bulk of a busy channel: not even recorded.
    if (route.kind === 'ignore') return undefined;
    return recordDelivery(this.deps.db, { workspaceId: ws.workspace.workspaceId, eventId, messageKey: messageKey(route.channel, route.ts), payload: { event_id: eventId, event: envelope.event } });
  }

  /** Processes a recorded delivery once; never throws (the outcome is recorded with it). */
  async process(ws: ConnectedWorkspace, entry: InboxEntry): Promise<string> {
    let outcome: string;
    let status: 'done' | 'failed' = 'done';
    try {
      outcome = await this.handle(ws, entry);
    } catch (error) {
      status = 'failed';
      outcome = `failed: ${(error as Error).message}`;
      this.deps.logger.error({ err: error, workspace: ws.workspace.workspaceId, event: entry.eventId }, 'a Slack event could not be processed');
    }
    await finishDelivery(this.deps.db, entry.id, status, outcome);
    return outcome;
  }

  private async handle(ws: ConnectedWorkspace, entry: InboxEntry): Promise<string> {
    const route = routeEvent(asObject(entry.payload)?.event, ws.botUserId);
    if (route.kind === 'ignore') return `ignored: ${route.why}`;
    const workspaceId = ws.workspace.workspaceId;
    const threadTs = route.threadTs ?? route.ts;
    const bound = await findThreadByTs(this.deps.db, workspaceId, route.channel, threadTs);
    // In a channel the agent answers a tag, or a reply in a thread it is already in; a DM is always for it.
    if (route.channelType !== 'im' && !route.mentioned && !bound) return 'ignored: not addressed to the agent';
    const refuse = async (text: string, why: string) => {
      await this.deps.replies.postRefusal(workspaceId, route.channel, threadTs, text, `refusal:${route.channel}:${route.ts}`);
      return `refused: ${why}`;
    };

    const who = await this.deps.directory.member(ws.workspace, ws.client, route.user);
    if ('ignore' in who) return `ignored: ${who.ignore}`;
    if ('refuse' in who) return refuse(who.refuse, who.refuse);
    const place = await this.placeOf(ws, route, who.member.id);
    const key = messageKey(route.channel, route.ts);
    const files = route.files.length && place.kind !== 'group-dm' ? filesNote(await fetchMessageFiles(this.deps.db, ws.fetch, { workspaceId, messageKey: key, files: route.files })) : '';
    const typed = plainText(route.text, ws.botUserId) || '(tagged with no message: read the thread above)';
    const invocation: Invocation = {
      workspaceId,
      place,
      ...(place.kind === 'group-dm' ? {} : { threadKey: bound ? await this.threadKeyOf(bound) : threadTs }),
      memberId: who.member.id,
      text: files ? `${typed}\n\n${files}` : typed,
      trigger: 'message',
      dedupeKey: `slack:${workspaceId}:${key}`,
      ...(!bound && route.threadTs ? { context: await this.threadContext(ws, route) } : {}),
    };
    let result;
    try {
      result = await this.deps.port.invoke(invocation);
    } catch (error) {
      // Input the person can fix (a message over the size limit): they hear why, in the thread.
      if (isTagboxError(error) && error.exitCode === 2) return refuse(error.message, error.message);
      throw error;
    }
    if (result.status === 'refused') {
      if (result.thread) {
        // The session layer posted the refusal in the thread: the poster carries it to Slack.
        await this.bind({ sessionId: result.thread, workspaceId, channel: route.channel, threadTs });
        return `refused: ${result.reason}`;
      }
      if (result.visibility === 'private') {
        await ws.client.chat.postEphemeral({ channel: route.channel, user: route.user, thread_ts: threadTs, text: result.message });
        return `refused: ${result.reason}`;
      }
      return refuse(result.message, result.reason);
    }
    if (!bound) await this.bind({ sessionId: result.thread, workspaceId, channel: route.channel, threadTs });
    if (files) await attachFiles(this.deps.db, workspaceId, key, result.thread);
    if (result.duplicate) return `duplicate of ${result.message}`;
    await this.deps.replies.acknowledge(workspaceId, route.channel, route.ts);
    return `accepted: thread ${result.thread}`;
  }

  private async placeOf(ws: ConnectedWorkspace, route: PersonMessage, memberId: string): Promise<InvocationPlaceRef> {
    if (route.channelType === 'mpim') return { kind: 'group-dm' };
    if (route.channelType === 'im') return { kind: 'dm', memberId };
    const channel = await this.deps.directory.channel(ws.workspace, ws.client, route.channel);
    return { kind: 'channel', channelId: channel.id };
  }

  private async threadKeyOf(bound: SlackThreadRef): Promise<string> {
    return (await getSession(this.deps.db, bound.sessionId))?.threadKey ?? bound.threadTs;
  }

  private async bind(ref: SlackThreadRef): Promise<void> {
    await bindThread(this.deps.db, ref);
  }

  /** The thread before the tag (conversations.replies), oldest first, as context the engine reads. */
  private async threadContext(ws: ConnectedWorkspace, route: PersonMessage): Promise<NonNullable<Invocation['context']>> {
    const replies = await ws.client.conversations.replies({ channel: route.channel, ts: route.threadTs!, limit: CONTEXT_MESSAGES });
    const out: NonNullable<Invocation['context']> = [];
    for (const m of replies.messages ?? []) {
      if (!m.ts || m.ts === route.ts || Number(m.ts) > Number(route.ts)) continue;
      const text = plainText(m.text ?? '', ws.botUserId);
      if (!text) continue;
      // Known people by their name, others by their Slack id: no users.info per line of context.
      const known = m.user ? await findMemberByExternalId(this.deps.db, ws.workspace.workspaceId, m.user) : undefined;
      out.push({ author: known ? { id: known.id, name: known.displayName } : { name: m.user ?? (m.bot_id ? 'a bot' : 'someone') }, text });
    }
    return out;
  }
}

function asObject(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}
