import { get, post, postWith, seg } from '../api';
import type { ChatMessage } from './thread-model';

/** The chat API's shapes (CONTRACT.md "Talking to the agent", docs/API.md) as the page uses them. */

export interface Channel {
  id: string;
  name: string;
  isPrivate: boolean;
}

/** Where a thread lives: a channel, or the member's DM with the agent. */
export type Place = { kind: 'channel'; channelId: string } | { kind: 'dm' };

export interface ThreadSummary {
  thread: string;
  title: string;
  startedBy: { id: string; name: string } | null;
  lastActivity: string;
  state: 'idle' | 'queued' | 'running';
  messages: number;
}

export interface ThreadDetail {
  thread: string;
  place: { kind: 'channel'; channel: string; name?: string } | { kind: 'dm'; member: string };
  session: { state: 'idle' | 'queued' | 'running'; identity: string; engine: string };
  messages: ChatMessage[];
}

export interface Posted {
  thread: string;
  message: string;
  duplicate?: true;
}

export const listChannels = () => get<Channel[]>('channels');

export function listThreads(place: Place, signal?: AbortSignal) {
  const path = place.kind === 'channel' ? `channels/${seg(place.channelId)}/threads?limit=50` : 'dms/threads?limit=50';
  return get<{ threads: ThreadSummary[] }>(path, signal);
}

export const getThread = (thread: string, signal?: AbortSignal) => get<ThreadDetail>(`threads/${seg(thread)}`, signal);

/** Posts a message (a new thread without `thread`); the key makes a retried send land once. */
export function postMessage(place: Place, text: string, thread: string | undefined, idempotencyKey: string) {
  const path = place.kind === 'channel' ? `channels/${seg(place.channelId)}/messages` : 'dms/messages';
  return postWith<Posted>(path, { text, ...(thread ? { thread } : {}) }, { 'idempotency-key': idempotencyKey });
}

export const cancelTurn = (thread: string) => post<unknown>(`threads/${seg(thread)}/cancel`);

export const eventsUrl = (thread: string, after: number) => `/api/v1/threads/${seg(thread)}/events?after=${after}`;

/** The app path of a place, or of a thread in it. */
export function placePath(place: Place, thread?: string): string {
  const base = place.kind === 'channel' ? `/chat/c/${seg(place.channelId)}` : '/chat/dm';
  return thread ? `${base}/t/${seg(thread)}` : base;
}

export const placeKey = (place: Place) => (place.kind === 'channel' ? `c:${place.channelId}` : 'dm');
