import { createHash } from 'node:crypto';
import type { WebClient } from '@slack/web-api';
import type { Kysely } from 'kysely';
import type { Database } from '../../store/tables.js';
import type { ChannelPacer } from './channel-pacer.js';
import { claimPost, markPosted } from './slack-posts-repo.js';
import { forSlack } from './slack-text.js';

/** What a post needs: where it goes and how (one Slack workspace's client, the store, the pacer). */
export interface PostContext {
  db: Kysely<Database>;
  client: WebClient;
  pacer: ChannelPacer;
  workspaceId: string;
  channel: string;
  /** The thread's root ts; undefined for a message at the channel's top level (a thread root). */
  threadTs: string | undefined;
}

export const POST_EVENT_TYPE = 'tagbox_post';

/** The metadata every post carries, so that a restart can find what it already posted. */
export function postMetadata(key: string): { event_type: string; event_payload: { key: string } } {
  return { event_type: POST_EVENT_TYPE, event_payload: { key } };
}

/** Message options every post shares: no link or media previews of agent text. */
export const NO_UNFURLS = { unfurl_links: false, unfurl_media: false } as const;

/**
 * Posts `text` (through forSlack) once under `key`. The claim comes first; a
 * claim that exists but is not marked posted was made by an attempt that may
 * or may not have reached Slack (a crash, a failed call), so the thread is
 * searched for the key before posting again. Returns the message's ts.
 */
export async function postOnce(ctx: PostContext, key: string, text: string): Promise<string | undefined> {
  const { post, claimed } = await claimPost(ctx.db, { workspaceId: ctx.workspaceId, key, channel: ctx.channel });
  if (post.state === 'posted') return post.ts;
  if (!claimed) {
    const found = await findPosted(ctx, { key });
    if (found) {
      await markPosted(ctx.db, ctx.workspaceId, key, found);
      return found;
    }
  }
  await ctx.pacer.newMessage(ctx.channel);
  const result = await ctx.client.chat.postMessage({
    channel: ctx.channel,
    ...(ctx.threadTs ? { thread_ts: ctx.threadTs } : {}),
    text: forSlack(text),
    ...NO_UNFURLS,
    metadata: postMetadata(key),
  });
  await markPosted(ctx.db, ctx.workspaceId, key, result.ts);
  return result.ts;
}

/** The file name a snippet is uploaded under: derived from its key, so a restart can find it in the thread. */
export function snippetFileName(key: string): string {
  return `tagbox-output-${createHash('sha256').update(key).digest('hex').slice(0, 12)}.txt`;
}

/** Uploads `content` as a snippet file in the thread, once under `key`. The content is a file: shown as is, never parsed as markup. */
export async function uploadOnce(ctx: PostContext, key: string, content: string): Promise<void> {
  const { post, claimed } = await claimPost(ctx.db, { workspaceId: ctx.workspaceId, key, channel: ctx.channel });
  if (post.state === 'posted') return;
  const filename = snippetFileName(key);
  if (!claimed) {
    const found = await findPosted(ctx, { file: filename });
    if (found) return markPosted(ctx.db, ctx.workspaceId, key, found);
  }
  await ctx.pacer.newMessage(ctx.channel);
  const file = { content, filename, title: 'The whole output' };
  await ctx.client.files.uploadV2(ctx.threadTs ? { ...file, channel_id: ctx.channel, thread_ts: ctx.threadTs } : { ...file, channel_id: ctx.channel });
  await markPosted(ctx.db, ctx.workspaceId, key, undefined);
}

interface SlackMessageLike {
  ts?: string;
  metadata?: { event_type?: string; event_payload?: Record<string, unknown> };
  files?: Array<{ name?: string }>;
}

/** How far back a restart looks: a thread's replies (all of them, in pages), or the channel's latest messages for a root. */
const MAX_PAGES = 20;

/** The ts of the message in the thread (or, for a root, in the channel) that carries `key`, or the file named `file`. */
export async function findPosted(ctx: PostContext, what: { key: string } | { file: string }): Promise<string | undefined> {
  const matches = (m: SlackMessageLike) =>
    'key' in what ? m.metadata?.event_type === POST_EVENT_TYPE && m.metadata.event_payload?.key === what.key : (m.files ?? []).some((f) => f.name === what.file);
  if (!ctx.threadTs) {
    const page = await ctx.client.conversations.history({ channel: ctx.channel, include_all_metadata: true, limit: 200 });
    return (page.messages as SlackMessageLike[] | undefined)?.find(matches)?.ts;
  }
  let cursor: string | undefined;
  for (let i = 0; i < MAX_PAGES; i++) {
    const page = await ctx.client.conversations.replies({ channel: ctx.channel, ts: ctx.threadTs, include_all_metadata: true, limit: 200, ...(cursor ? { cursor } : {}) });
    const found = (page.messages as SlackMessageLike[] | undefined)?.find(matches);
    if (found?.ts) return found.ts;
    cursor = page.response_metadata?.next_cursor || undefined;
    if (!cursor) return undefined;
  }
  return undefined;
}
