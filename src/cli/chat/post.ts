import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiError, type ApiClient } from '../api-client.js';
import type { ChatPlace } from './place.js';

export type PostResult =
  | { status: 'accepted'; thread: string; message: string; duplicate: boolean }
  | { status: 'refused'; reason: string; message: string; thread?: string };

/** Waits before each retry of a post that may not have arrived; about 3.5 s in all. */
const RETRY_DELAYS_MS = [250, 500, 1000, 2000];

/**
 * Posts one message (CONTRACT.md "Talking to the agent"). It carries an
 * Idempotency-Key made once per message, so a retry after a network error
 * or a 502/503/504 — when we cannot know whether the first attempt arrived —
 * is the same message, never a second one (the server answers `duplicate`).
 * A refusal (403 `refused`) is a result, not an error: it has a reason to show.
 */
export async function postMessage(client: ApiClient, place: ChatPlace, text: string, thread?: string): Promise<PostResult> {
  const path = place.kind === 'dm' ? '/api/v1/dms/messages' : `/api/v1/channels/${encodeURIComponent(place.id)}/messages`;
  const headers = { 'idempotency-key': `tagbox-chat-${randomUUID()}` };
  const body = { text, ...(thread !== undefined ? { thread } : {}) };
  for (let attempt = 0; ; attempt++) {
    try {
      const answer = await client.call<{ thread: string; message: string; duplicate?: boolean }>('POST', path, body, headers);
      return { status: 'accepted', thread: answer.thread, message: answer.message, duplicate: answer.duplicate === true };
    } catch (error) {
      const refused = refusalIn(error);
      if (refused) return refused;
      if (!mayRetry(error) || attempt >= RETRY_DELAYS_MS.length) throw error;
      await sleep(RETRY_DELAYS_MS[attempt]);
    }
  }
}

function refusalIn(error: unknown): Extract<PostResult, { status: 'refused' }> | undefined {
  if (!(error instanceof ApiError) || error.status !== 403) return undefined;
  const body = error.body as { error?: { code?: unknown; reason?: unknown; message?: unknown }; thread?: unknown } | undefined;
  if (body?.error?.code !== 'refused') return undefined;
  return {
    status: 'refused',
    reason: String(body.error.reason ?? 'refused'),
    message: String(body.error.message ?? 'the agent may not be used here'),
    ...(typeof body.thread === 'string' ? { thread: body.thread } : {}),
  };
}

/** An answer the server gave is final, except a gateway's or a starting server's; anything else is the network. */
function mayRetry(error: unknown): boolean {
  if (error instanceof ApiError) return error.status === 502 || error.status === 503 || error.status === 504;
  return true;
}
