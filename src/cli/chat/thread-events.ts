import { setTimeout as sleep } from 'node:timers/promises';
import { failure, isTagboxError } from '../../errors.js';
import { ApiError, type ApiClient } from '../api-client.js';
import { SseParser } from './sse-parser.js';

/** One event of a thread's log (CONTRACT.md "Talking to the agent"): `seq` is its SSE id. */
export interface ThreadEvent {
  seq: number;
  type: string;
  data: Record<string, unknown>;
}

export interface FollowOptions {
  /** Events after this seq (Last-Event-ID). */
  after: number;
  signal: AbortSignal;
  /** How long to keep reconnecting after the stream dropped with no event since (a server restart). */
  retryForMs?: number;
  /** Told once when the stream drops, and again when it is back. */
  onConnection?: (state: 'lost' | 'back', detail: string) => void;
}

/**
 * A thread's events, oldest first, for as long as the caller reads: the SSE
 * stream of GET /threads/{thread}/events, reopened with Last-Event-ID when
 * it drops (a restart of the server), so nothing is missed and nothing comes
 * twice. It gives up, with an error that says so, once the server has been
 * unreachable for `retryForMs`; an answer the client cannot fix by waiting (401,
 * 404) ends it at once. Ends when `signal` aborts or the caller stops.
 */
export async function* threadEvents(client: ApiClient, thread: string, options: FollowOptions): AsyncGenerator<ThreadEvent> {
  const retryForMs = options.retryForMs ?? 30_000;
  const path = `/api/v1/threads/${encodeURIComponent(thread)}/events`;
  let cursor = options.after;
  let lostSince: number | undefined;
  let delayMs = 250;
  let serverDelayMs: number | undefined;
  for (;;) {
    let why: string;
    try {
      const response = await client.open(path, { accept: 'text/event-stream', 'last-event-id': String(cursor) }, options.signal);
      if (response.statusCode !== 200) {
        const text = await response.body.text().catch(() => '');
        const error = new ApiError('GET', path, response.statusCode, safeJson(text), text);
        // 5xx (a server starting or stopping) and 429 pass with time; the rest will not.
        if (response.statusCode < 500 && response.statusCode !== 429) throw error;
        why = error.message;
      } else {
        // The server is there again: the give-up clock starts afresh at the next drop.
        if (lostSince !== undefined) options.onConnection?.('back', `reconnected to ${client.url}`);
        lostSince = undefined;
        delayMs = 250;
        const parser = new SseParser();
        const body = response.body;
        body.setEncoding('utf8');
        try {
          for await (const chunk of body as AsyncIterable<string>) {
            for (const raw of parser.push(chunk)) {
              const event = toThreadEvent(raw.type, raw.data, raw.id);
              if (!event) continue;
              if (event.seq > cursor) cursor = event.seq;
              else if (event.seq !== 0) continue; // already seen: a replay after a reconnect never repeats
              yield event;
            }
          }
          serverDelayMs = parser.retryMs;
          why = 'the server closed the stream';
        } finally {
          body.destroy();
        }
      }
    } catch (error) {
      if (options.signal.aborted) return;
      if (error instanceof ApiError && error.status < 500 && error.status !== 429) throw error;
      why = isTagboxError(error) ? error.message : `the stream broke: ${(error as Error).message}`;
    }
    if (options.signal.aborted) return;
    if (lostSince === undefined) {
      lostSince = Date.now();
      options.onConnection?.('lost', `${why}; reconnecting for up to ${Math.round(retryForMs / 1000)} s`);
    }
    if (Date.now() - lostSince >= retryForMs) {
      throw failure(`lost the connection to Tagbox at ${client.url} for ${Math.round(retryForMs / 1000)} s (${why}); the turn may still be running: see thread ${thread}`, 'server_unreachable');
    }
    await sleep(serverDelayMs ?? delayMs, undefined, { signal: options.signal }).catch(() => undefined);
    if (options.signal.aborted) return;
    delayMs = Math.min(delayMs * 2, 2000);
  }
}

/** Data is a JSON object; the id a number. Anything else is not an event of a thread and is skipped. */
function toThreadEvent(type: string, data: string, id: string): ThreadEvent | undefined {
  const parsed = safeJson(data);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const seq = /^\d{1,15}$/.test(id) ? Number(id) : 0;
  return { seq, type, data: parsed as Record<string, unknown> };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
