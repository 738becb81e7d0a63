import type { WebClient } from '@slack/web-api';
import type { Kysely } from 'kysely';
import { getMember } from '../../access/members-repo.js';
import { getChannel, getWorkspace } from '../../access/workspaces-repo.js';
import type { TagboxConfig } from '../../config/schema.js';
import type { Logger } from '../../log.js';
import type { EventHub } from '../../sessions/event-hub.js';
import { readEvents } from '../../sessions/event-log.js';
import { getSession } from '../../sessions/sessions-repo.js';
import { getTurn } from '../../sessions/turns-repo.js';
import type { Database } from '../../store/tables.js';
import { ChannelPacer, systemClock, type Clock } from './channel-pacer.js';
import { postOnce } from './slack-post.js';
import { bindThread, scheduledSessionsWithoutThread, threadOfSession, threadsBehind } from './slack-threads-repo.js';
import { isPlatformError, ThreadDelivery, type DeliveryShared } from './thread-delivery.js';

export interface SlackReplyPosterOptions {
  db: Kysely<Database>;
  hub: EventHub;
  /** The workspace's Web API client (through the proxy); undefined while it is not connected. */
  clientFor: (workspaceId: string) => WebClient | undefined;
  config: TagboxConfig['slack'];
  logger: Logger;
  /** How often to look for events written by other processes, and scheduled sessions without a thread (default 1000). */
  pollMs?: number;
  clock?: Clock;
}

/** The longest prompt a scheduled thread's root shows. */
const ROOT_PROMPT_CHARS = 2000;

/**
 * How what happens in a Slack thread's session reaches Slack (invariants 9
 * and 10). It follows the event log of every session with a slack_threads
 * row from its delivered_seq — woken by the EventHub for this process's
 * writers and by a poll for the others' — and posts each event's effect once
 * (thread-delivery.ts), paced per channel. A session that a schedule started
 * in a Slack workspace first gets its thread: a root message in the channel.
 */
export class SlackReplyPoster {
  private readonly pacer: ChannelPacer;
  private readonly shared: DeliveryShared;
  private readonly deliveries = new Map<string, ThreadDelivery>();
  private readonly active = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();
  private unsubscribe: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  private closing = false;
  /** Transient failures are logged once per outage, not once a poll. */
  private failing = false;

  constructor(private readonly options: SlackReplyPosterOptions) {
    this.pacer = new ChannelPacer(options.config.messagesPerSecond, options.clock ?? systemClock);
    this.shared = {
      db: options.db,
      pacer: this.pacer,
      logger: options.logger,
      snippetAboveChars: options.config.snippetAboveChars,
      streaming: new Map(),
      recipient: (sessionId, turnId) => this.recipient(sessionId, turnId),
    };
  }

  start(): void {
    if (this.timer || this.closing) return;
    this.unsubscribe = this.options.hub.subscribeAll((sessionId) => this.deliver(sessionId));
    this.timer = setInterval(() => this.sweep(), this.options.pollMs ?? 1000);
    this.timer.unref();
    this.sweep();
  }

  /** Stops following; waits for the posts under way (what is left is delivered by the next poster, from delivered_seq). */
  async close(): Promise<void> {
    this.closing = true;
    this.unsubscribe?.();
    clearInterval(this.timer);
    await this.sweeping;
    while (this.active.size) await Promise.allSettled([...this.active.values()]);
    for (const d of this.deliveries.values()) d.close();
    this.deliveries.clear();
  }

  /** The receipt reaction (`eyes`) on the member's message. */
  async acknowledge(workspaceId: string, channel: string, ts: string): Promise<void> {
    const client = this.clientOrThrow(workspaceId);
    try {
      await client.reactions.add({ channel, timestamp: ts, name: 'eyes' });
    } catch (error) {
      if (isPlatformError(error) && (error as { data?: { error?: string } }).data?.error === 'already_reacted') return;
      throw error;
    }
  }

  /** A refusal in the thread (DMs off, a group DM...), its own message, once per key (e.g. `refusal:<channel>:<ts>`). */
  async postRefusal(workspaceId: string, channel: string, threadTs: string, text: string, key: string): Promise<string | undefined> {
    const client = this.clientOrThrow(workspaceId);
    return postOnce({ db: this.options.db, client, pacer: this.pacer, workspaceId, channel, threadTs }, key, text);
  }

  /** Delivers what `sessionId`'s thread is behind (coalesced: one pass per session at a time, another after it if woken meanwhile). */
  deliver(sessionId: string): void {
    if (this.closing) return;
    if (this.active.has(sessionId)) {
      this.again.add(sessionId);
      return;
    }
    const pass = this.deliverNow(sessionId)
      .catch((error: unknown) => {
        // The in-memory state may be half-way through an event: rebuilt from the store on the next pass.
        this.deliveries.get(sessionId)?.close();
        this.deliveries.delete(sessionId);
        this.transient(error, sessionId);
      })
      .finally(() => {
        this.active.delete(sessionId);
        if (this.again.delete(sessionId)) this.deliver(sessionId);
      });
    this.active.set(sessionId, pass);
  }

  private async deliverNow(sessionId: string): Promise<void> {
    let delivery = this.deliveries.get(sessionId);
    if (!delivery) {
      const thread = await threadOfSession(this.options.db, sessionId);
      if (!thread) return;
      const client = this.options.clientFor(thread.workspaceId);
      if (!client) return;
      delivery = new ThreadDelivery(this.shared, client, thread);
      this.deliveries.set(sessionId, delivery);
    }
    await delivery.run(() => this.closing);
  }

  private sweep(): void {
    if (this.sweeping || this.closing) return;
    this.sweeping = (async () => {
      await this.bindRoots();
      for (const thread of await threadsBehind(this.options.db)) this.deliver(thread.sessionId);
      if (this.failing) this.options.logger.info('slack replies: working again');
      this.failing = false;
    })()
      .catch((error: unknown) => this.transient(error))
      .finally(() => (this.sweeping = undefined));
  }

  /** Scheduled sessions of Slack workspaces get their thread: "Scheduled by <name>: <prompt>" in the channel, then the row. */
  private async bindRoots(): Promise<void> {
    const { db } = this.options;
    for (const s of await scheduledSessionsWithoutThread(db)) {
      if (this.closing) return;
      const client = this.options.clientFor(s.workspaceId);
      const channel = await getChannel(db, s.channelId);
      if (!client || !channel) continue;
      const first = (await readEvents(db, s.sessionId, 0, 20)).find((e) => e.type === 'message' && (e.data.author as { kind?: string } | undefined)?.kind === 'member');
      if (!first) continue;
      const author = first.data.author as { name?: string };
      const prompt = String(first.data.text ?? '');
      const text = `Scheduled by ${author.name ?? 'someone'}: ${prompt.length > ROOT_PROMPT_CHARS ? `${prompt.slice(0, ROOT_PROMPT_CHARS)}…` : prompt}`;
      try {
        const ts = await postOnce({ db, client, pacer: this.pacer, workspaceId: s.workspaceId, channel: channel.externalId, threadTs: undefined }, `root:${s.sessionId}`, text);
        if (!ts) continue;
        await bindThread(db, { sessionId: s.sessionId, workspaceId: s.workspaceId, channel: channel.externalId, threadTs: ts });
      } catch (error) {
        if (!isPlatformError(error)) throw error;
        this.options.logger.warn({ err: error, session: s.sessionId }, 'slack: a scheduled thread\'s root could not be posted');
      }
      this.deliver(s.sessionId);
    }
  }

  /** A channel stream names who it is for: the Slack user who started the turn, in the workspace's team. */
  private async recipient(sessionId: string, turnId: string | undefined): Promise<{ recipient_team_id?: string; recipient_user_id?: string }> {
    const { db } = this.options;
    const session = await getSession(db, sessionId);
    const workspace = session && (await getWorkspace(db, session.workspaceId));
    if (!session || workspace?.kind !== 'slack') return {};
    const turn = turnId ? await getTurn(db, turnId) : undefined;
    const member = turn?.triggeredBy ? await getMember(db, turn.triggeredBy) : session.createdBy ? await getMember(db, session.createdBy) : undefined;
    return { recipient_team_id: workspace.externalId, ...(member ? { recipient_user_id: member.externalId } : {}) };
  }

  private clientOrThrow(workspaceId: string): WebClient {
    const client = this.options.clientFor(workspaceId);
    if (!client) throw new Error(`slack: workspace ${workspaceId} is not connected`);
    return client;
  }

  private transient(error: unknown, sessionId?: string): void {
    if (this.failing) return;
    this.failing = true;
    this.options.logger.warn({ err: error, ...(sessionId ? { session: sessionId } : {}) }, 'slack replies: a delivery failed; retrying on the next poll');
  }
}
