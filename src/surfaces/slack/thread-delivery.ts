import { ErrorCode, type WebClient } from '@slack/web-api';
import type { Kysely } from 'kysely';
import type { Logger } from '../../log.js';
import { readEvent, readEvents, readTurnEvents } from '../../sessions/event-log.js';
import type { SessionEvent } from '../../sessions/model.js';
import type { Database } from '../../store/tables.js';
import { addedByMessage } from '../../util/repeat.js';
import type { ChannelPacer } from './channel-pacer.js';
import { findPosted, NO_UNFURLS, postMetadata, postOnce, uploadOnce, type PostContext } from './slack-post.js';
import { claimPost, getPost, markPosted, setPostTs } from './slack-posts-repo.js';
import { forSlack } from './slack-text.js';
import { advanceDelivered, type SlackThread } from './slack-threads-repo.js';

/** What a thread's delivery shares with the others of its poster. */
export interface DeliveryShared {
  db: Kysely<Database>;
  pacer: ChannelPacer;
  logger: Logger;
  snippetAboveChars: number;
  /** Per workspace: false once chat.startStream was found missing (then postMessage + update). */
  streaming: Map<string, boolean>;
  /** Who a stream is for, where Slack wants to know (a channel stream names its recipient). */
  recipient(sessionId: string, turnId: string | undefined): Promise<{ recipient_team_id?: string; recipient_user_id?: string }>;
}

/** The answer of a turn being shown: a stream (or a message updated in place) that the agent's message ends. */
interface OpenAnswer {
  turn: string | undefined;
  key: string;
  ts: string;
  mode: 'stream' | 'update';
  /** All progress text of this answer, as the session logged it (the snippet's content when long). */
  streamed: string;
  /** The answer went over snippetAboveChars: the message stops growing, the whole follows as a file. */
  cut: boolean;
  /** Found already ended (a replay after a restart): later progress and its message add nothing. */
  finished?: true;
}

export const WORKING_STATUS = 'is working…';
export const STATUS_REFRESH_MS = 60_000;
const CUT_NOTE = '\n…\n(the rest is in the file below)';
/** Slack's answers that mean "this workspace has no streaming": fall back to postMessage + update. */
const NO_STREAMING = new Set(['unknown_method', 'not_allowed_token_type', 'method_deprecated']);

/**
 * One Slack thread's share of a session's event log, posted in order, each
 * event's effect once: progress streams the answer, the agent's message ends
 * it, system messages, notices and errors are their own messages, status
 * shows while a turn runs. The thread's `delivered_seq` moves after each
 * effect; what this object holds in memory (the open answer) is rebuilt from
 * the log and the claims when it is new, so a restart picks up mid-answer.
 */
export class ThreadDelivery {
  private answer: OpenAnswer | undefined;
  private rebuilt = false;
  private refresher: NodeJS.Timeout | undefined;

  constructor(
    private readonly shared: DeliveryShared,
    private readonly client: WebClient,
    private readonly thread: SlackThread,
  ) {}

  get sessionId(): string {
    return this.thread.sessionId;
  }

  private get ctx(): PostContext {
    return { db: this.shared.db, client: this.client, pacer: this.shared.pacer, workspaceId: this.thread.workspaceId, channel: this.thread.channel, threadTs: this.thread.threadTs };
  }

  /** Delivers what is behind, until caught up or `stop()`. A transient failure throws: drop this object and try again later. */
  async run(stop: () => boolean): Promise<void> {
    if (!this.rebuilt) await this.rebuild();
    const { db } = this.shared;
    for (;;) {
      if (stop()) return;
      let events = await readEvents(db, this.sessionId, this.thread.deliveredSeq, 200);
      if (events.length === 0) return;
      const answer = this.answer;
      if (events[0]!.type === 'progress' && answer && !answer.finished && !answer.cut && answer.turn === events[0]!.turn) {
        // Wait for the message's next change slot first: what arrives meanwhile goes in the same change.
        await this.shared.pacer.change(this.thread.channel, answer.ts);
        events = await readEvents(db, this.sessionId, this.thread.deliveredSeq, 200);
      }
      const first = events[0]!;
      const group = first.type === 'progress' ? leadingProgress(events) : [first];
      let upto = group.at(-1)!.seq;
      try {
        if (first.type === 'progress') upto = await this.progress(group);
        else await this.effect(first);
      } catch (error) {
        if (!isPlatformError(error)) throw error;
        // Slack refused (not in the channel, the channel gone...): this event cannot be posted; the next may.
        this.shared.logger.warn({ err: error, session: this.sessionId, seq: first.seq, type: first.type }, 'slack: an event could not be posted');
        this.rebuilt = false;
        this.answer = undefined;
      }
      await advanceDelivered(db, this.sessionId, upto);
      this.thread.deliveredSeq = upto;
      if (!this.rebuilt) await this.rebuild();
    }
  }

  close(): void {
    clearInterval(this.refresher);
    this.refresher = undefined;
  }

  private async effect(event: SessionEvent): Promise<void> {
    const data = event.data;
    const key = (kind: string) => `${kind}:${this.sessionId}:${event.seq}`;
    if (event.type === 'message') {
      const author = (data.author ?? {}) as { kind?: string };
      const text = typeof data.text === 'string' ? data.text : '';
      if (author.kind === 'agent') await this.agentMessage(event, text);
      else if (author.kind === 'system' && text.trim()) await postOnce(this.ctx, key('system'), text);
      // Members' messages came from the thread itself (or are a schedule's prompt, which its root shows).
    } else if (event.type === 'notice') {
      const text = typeof data.text === 'string' ? data.text : `notice: ${String(data.host ?? '')}`;
      await postOnce(this.ctx, key('notice'), text);
    } else if (event.type === 'error') {
      await postOnce(this.ctx, key('error'), `The agent reported an error: ${String(data.message ?? 'unknown')}`);
    } else if (event.type === 'status') {
      if (data.state === 'running') await this.working(true);
      else if (data.state === 'queued') await this.setStatus(`queued: ${String(data.ahead ?? '?')} ahead`);
    } else if (event.type === 'done') {
      // A joined turn's `done`: its messages are answered by the running turn, which goes on.
      if (data.status === 'joined') return;
      if (this.answer && this.answer.turn === event.turn) await this.endAnswer('');
      await this.working(false);
    }
    // `usage` says nothing in the thread.
  }

  /** Progress of one turn: the first event opens the answer alone (so what its message holds is known), the rest extend it. */
  private async progress(group: SessionEvent[]): Promise<number> {
    const first = group[0]!;
    if (this.answer && this.answer.turn !== first.turn) await this.endAnswer('');
    if (!this.answer) {
      await this.openAnswer(first);
      return first.seq;
    }
    await this.extend(group.map(textOf).join(''));
    return group.at(-1)!.seq;
  }

  private async openAnswer(event: SessionEvent): Promise<void> {
    const { db, pacer } = this.shared;
    const key = `answer:${event.turn ?? this.sessionId}:${event.seq}`;
    const text = textOf(event);
    const limit = this.shared.snippetAboveChars;
    const { post, claimed } = await claimPost(db, { workspaceId: this.thread.workspaceId, key, channel: this.thread.channel });
    const base = { turn: event.turn, key, streamed: text, cut: text.length > limit };
    if (post.state === 'posted') {
      this.answer = { ...base, ts: post.ts ?? '', mode: 'update', finished: true };
      return;
    }
    let ts = post.ts ?? (claimed ? undefined : await findPosted(this.ctx, { key }));
    if (ts) {
      // An earlier attempt opened it (with this event's text alone): go on from there.
      await setPostTs(db, this.thread.workspaceId, key, ts);
      this.answer = { ...base, ts, mode: this.shared.streaming.get(this.thread.workspaceId) === false ? 'update' : 'stream' };
      return;
    }
    await pacer.newMessage(this.thread.channel);
    const shown = forSlack(base.cut ? text.slice(0, limit) + CUT_NOTE : text);
    let mode: OpenAnswer['mode'] = 'stream';
    if (this.shared.streaming.get(this.thread.workspaceId) !== false) {
      try {
        const started = await this.client.chat.startStream({
          channel: this.thread.channel,
          thread_ts: this.thread.threadTs,
          markdown_text: shown,
          ...(await this.shared.recipient(this.sessionId, event.turn)),
          // Not in the method's published arguments; carried where Slack keeps it, so a restart can find the stream.
          ...({ metadata: postMetadata(key) } as object),
        });
        ts = started.ts;
        this.shared.streaming.set(this.thread.workspaceId, true);
      } catch (error) {
        if (!isPlatformError(error)) throw error;
        if (NO_STREAMING.has(platformCode(error))) this.shared.streaming.set(this.thread.workspaceId, false);
        else this.shared.logger.warn({ err: error, session: this.sessionId }, 'slack: chat.startStream refused; posting and updating instead');
      }
    }
    if (!ts) {
      mode = 'update';
      const posted = await this.client.chat.postMessage({ channel: this.thread.channel, thread_ts: this.thread.threadTs, text: shown, ...NO_UNFURLS, metadata: postMetadata(key) });
      ts = posted.ts!;
    }
    await setPostTs(db, this.thread.workspaceId, key, ts);
    this.answer = { ...base, ts, mode };
  }

  /** More progress: appended to the stream (or the message updated), up to snippetAboveChars. The caller took the change slot. */
  private async extend(text: string): Promise<void> {
    const a = this.answer!;
    if (a.finished || !text) {
      a.streamed += text;
      return;
    }
    const before = a.streamed;
    a.streamed += text;
    if (a.cut) return;
    const limit = this.shared.snippetAboveChars;
    a.cut = a.streamed.length > limit;
    if (a.mode === 'stream') {
      const piece = a.cut ? before.length < limit ? text.slice(0, limit - before.length) + CUT_NOTE : CUT_NOTE : text;
      try {
        await this.client.chat.appendStream({ channel: this.thread.channel, ts: a.ts, markdown_text: forSlack(piece) });
        return;
      } catch (error) {
        if (!isPlatformError(error)) throw error;
        // The stream is over on Slack's side (it timed out, or a restart found it ended): the message is updated instead.
        a.mode = 'update';
      }
    }
    await this.client.chat.update({ channel: this.thread.channel, ts: a.ts, text: forSlack(this.shownOf(a.streamed)) });
  }

  /** The agent's message: the end of the open answer, or an answer of its own. */
  private async agentMessage(event: SessionEvent, text: string): Promise<void> {
    if (this.answer && this.answer.turn === event.turn) return this.endAnswer(text);
    if (this.answer) await this.endAnswer('');
    if (!text.trim()) return;
    const key = `answer:${event.turn ?? this.sessionId}:${event.seq}`;
    const long = text.length > this.shared.snippetAboveChars;
    await postOnce(this.ctx, key, long ? this.shownOf(text) : text);
    if (long) await uploadOnce(this.ctx, `snippet:${key}`, text);
  }

  /** Ends the open answer with what `message` adds to what was streamed (the whole as a file when long). */
  private async endAnswer(message: string): Promise<void> {
    const a = this.answer!;
    if (a.finished) {
      this.answer = undefined;
      return;
    }
    const added = message ? addedByMessage(message, a.streamed) : '';
    const whole = added ? `${a.streamed}${a.streamed.endsWith('\n') ? '' : '\n'}${added}` : a.streamed;
    const long = a.cut || whole.length > this.shared.snippetAboveChars;
    await this.shared.pacer.change(this.thread.channel, a.ts);
    let ended = false;
    if (a.mode === 'stream') {
      const tail = a.cut ? '' : long ? CUT_NOTE : added;
      try {
        await this.client.chat.stopStream({ channel: this.thread.channel, ts: a.ts, ...(tail ? { markdown_text: forSlack(tail) } : {}), metadata: postMetadata(a.key) });
        ended = true;
      } catch (error) {
        if (!isPlatformError(error)) throw error;
        // Already stopped (a replay after a restart) or expired: the message gets its final text by an update.
      }
    }
    if (!ended) await this.client.chat.update({ channel: this.thread.channel, ts: a.ts, text: forSlack(long ? this.shownOf(whole) : whole), metadata: postMetadata(a.key) });
    await markPosted(this.shared.db, this.thread.workspaceId, a.key, a.ts);
    this.answer = { ...a, finished: true };
    if (long) await uploadOnce(this.ctx, `snippet:${a.key}`, whole);
    this.answer = undefined;
  }

  /** What the thread shows of a long text: its start, and where the rest is. */
  private shownOf(text: string): string {
    const limit = this.shared.snippetAboveChars;
    return text.length > limit ? text.slice(0, limit) + CUT_NOTE : text;
  }

  private async working(on: boolean): Promise<void> {
    clearInterval(this.refresher);
    this.refresher = undefined;
    if (on) {
      this.refresher = setInterval(() => void this.setStatus(WORKING_STATUS).catch(() => undefined), STATUS_REFRESH_MS);
      this.refresher.unref();
    }
    await this.setStatus(on ? WORKING_STATUS : '');
  }

  /** The thread's status line; Slack refusing it (not an assistant thread) costs nothing else. */
  private async setStatus(status: string): Promise<void> {
    try {
      await this.client.assistant.threads.setStatus({ channel_id: this.thread.channel, thread_ts: this.thread.threadTs, status });
    } catch (error) {
      if (!isPlatformError(error)) throw error;
      this.shared.logger.debug({ err: error, session: this.sessionId }, 'slack: assistant.threads.setStatus refused');
    }
  }

  /**
   * What was shown before this object existed, from the log up to
   * delivered_seq and the answer's claim: a turn still running (its status
   * refreshed again) and its open answer (what it streamed).
   */
  private async rebuild(): Promise<void> {
    this.rebuilt = true;
    this.answer = undefined;
    const { db } = this.shared;
    const last = await readEvent(db, this.sessionId, this.thread.deliveredSeq);
    const turn = last?.type === 'done' && last.data.status === 'joined' && typeof last.data.into === 'string' ? last.data.into : last?.turn;
    if (!turn) return;
    const events = await readTurnEvents(db, this.sessionId, turn, this.thread.deliveredSeq);
    if (events.some((e) => e.type === 'done' && e.data.status !== 'joined')) return;
    if (events.some((e) => e.type === 'status' && e.data.state === 'running')) {
      this.refresher = setInterval(() => void this.setStatus(WORKING_STATUS).catch(() => undefined), STATUS_REFRESH_MS);
      this.refresher.unref();
    }
    const lastAgent = events.findLastIndex((e) => e.type === 'message' && (e.data.author as { kind?: string } | undefined)?.kind === 'agent');
    const progress = events.slice(lastAgent + 1).filter((e) => e.type === 'progress');
    if (progress.length === 0) return;
    const key = `answer:${turn}:${progress[0]!.seq}`;
    const post = await getPost(db, this.thread.workspaceId, key);
    if (!post?.ts) return;
    const streamed = progress.map(textOf).join('');
    this.answer = {
      turn,
      key,
      ts: post.ts,
      mode: this.shared.streaming.get(this.thread.workspaceId) === false ? 'update' : 'stream',
      streamed,
      cut: streamed.length > this.shared.snippetAboveChars,
      ...(post.state === 'posted' ? { finished: true as const } : {}),
    };
  }
}

function textOf(event: SessionEvent): string {
  return typeof event.data.text === 'string' ? event.data.text : '';
}

/** The progress events of one turn at the head of `events`. */
function leadingProgress(events: SessionEvent[]): SessionEvent[] {
  const turn = events[0]!.turn;
  const end = events.findIndex((e) => e.type !== 'progress' || e.turn !== turn);
  return end < 0 ? events : events.slice(0, end);
}

/** Slack answered, with `ok: false`: retrying the same call would get the same answer. */
export function isPlatformError(error: unknown): boolean {
  return (error as { code?: unknown } | undefined)?.code === ErrorCode.PlatformError;
}

function platformCode(error: unknown): string {
  return String((error as { data?: { error?: unknown } }).data?.error ?? '');
}
