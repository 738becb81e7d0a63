import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { readEvents } from '../../sessions/event-log.js';
import type { EventHub } from '../../sessions/event-hub.js';
import type { Database } from '../../store/tables.js';

/**
 * A thread's event log as Server-Sent Events: oldest first from the cursor
 * (`Last-Event-ID`, or `?after=` for clients that cannot set headers), then
 * live. The store is the truth: a wake-up from this process (the hub) or a
 * slow poll (for writers in other processes) only says "read again", so
 * nothing is skipped and nothing is sent twice, whatever the timing. The
 * stream ends when `stop` aborts (the server closing: an open stream would
 * otherwise hold its shutdown until the client goes); clients resume with
 * Last-Event-ID.
 */
export async function streamEvents(
  request: FastifyRequest,
  reply: FastifyReply,
  input: { db: Kysely<Database>; hub: EventHub; sessionId: string; after: number; stop?: AbortSignal; pollMs?: number; keepAliveMs?: number },
): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.write(': tagbox thread events\n\n');
  let cursor = input.after;
  let closed = false;
  let wake: (() => void) | undefined;
  const poke = () => {
    wake?.();
    wake = undefined;
  };
  const unsubscribe = input.hub.subscribe(input.sessionId, poke);
  const close = () => {
    closed = true;
    poke();
  };
  request.raw.on('close', close);
  res.on('close', close);
  input.stop?.addEventListener('abort', close);
  if (input.stop?.aborted) close();
  const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), input.keepAliveMs ?? 15_000);
  try {
    while (!closed) {
      const events = await readEvents(input.db, input.sessionId, cursor);
      for (const event of events) {
        res.write(`id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify({ ts: event.ts, ...event.data, ...(event.turn ? { turn: event.turn } : {}) })}\n\n`);
        cursor = event.seq;
      }
      if (events.length === 500) continue;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, input.pollMs ?? 1000).unref();
      });
    }
  } finally {
    clearInterval(keepAlive);
    input.stop?.removeEventListener('abort', close);
    unsubscribe();
    res.end();
  }
}

/** The cursor a client resumes from: Last-Event-ID, else ?after=, else the start. */
export function resumeCursor(request: FastifyRequest, query: { after?: number | undefined }): number {
  const header = request.headers['last-event-id'];
  const value = Array.isArray(header) ? header[0] : header;
  if (value !== undefined && /^\d{1,15}$/.test(value.trim())) return Number(value.trim());
  return query.after ?? 0;
}
