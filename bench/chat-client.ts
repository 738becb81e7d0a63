/**
 * The chat API as a benchmark drives it (CONTRACT.md "Talking to the agent"):
 * posting messages over HTTP, and a thread's Server-Sent Events read as they
 * arrive, each stamped with its arrival time on this process's clock.
 */
import { SseParser, type SseEvent } from '../src/cli/chat/sse-parser.js';
import { Agent, request } from 'undici';

export interface StreamEvent {
  id: number;
  type: string;
  data: Record<string, unknown>;
  /** performance.now() when it was parsed off the stream. */
  at: number;
  /** Milliseconds from the server writing it (its `ts`) to its arrival here: the stream's own delay. */
  delay: number;
}

export interface Posted {
  thread: string;
  message: string;
}

/** A failed HTTP exchange: counted, never retried (a retry would hide the error). */
export class HttpError extends Error {}

export class ChatClient {
  // No body timeout: a thread's stream stays open for the whole benchmark.
  readonly dispatcher = new Agent({ bodyTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 60_000 });

  constructor(
    readonly url: string,
    private readonly token: string,
  ) {}

  async get<T>(path: string): Promise<T> {
    const res = await request(`${this.url}${path}`, { headers: this.headers(), dispatcher: this.dispatcher });
    const body = await res.body.text();
    if (res.statusCode !== 200) throw new HttpError(`GET ${path}: ${res.statusCode} ${body.slice(0, 300)}`);
    return JSON.parse(body) as T;
  }

  /** POST a message to a channel; without `thread` it starts one. Anything but 202 is an HttpError. */
  async post(channel: string, text: string, thread?: string): Promise<Posted> {
    let res;
    try {
      res = await request(`${this.url}/api/v1/channels/${channel}/messages`, {
        method: 'POST',
        headers: { ...this.headers(), 'content-type': 'application/json' },
        body: JSON.stringify({ text, ...(thread ? { thread } : {}) }),
        dispatcher: this.dispatcher,
      });
    } catch (error) {
      throw new HttpError(`POST message: ${(error as Error).message}`);
    }
    const body = await res.body.text();
    if (res.statusCode !== 202) throw new HttpError(`POST message: ${res.statusCode} ${body.slice(0, 300)}`);
    return JSON.parse(body) as Posted;
  }

  /** Opens a thread's event stream from after `after` (0: from the start); resolves once the server answered 200. */
  async stream(thread: string, after = 0): Promise<ThreadStream> {
    const abort = new AbortController();
    const res = await request(`${this.url}/api/v1/threads/${thread}/events?after=${after}`, {
      headers: { ...this.headers(), accept: 'text/event-stream' },
      dispatcher: this.dispatcher,
      signal: abort.signal,
    });
    if (res.statusCode !== 200) {
      const body = await res.body.text();
      throw new HttpError(`GET events of ${thread}: ${res.statusCode} ${body.slice(0, 300)}`);
    }
    return new ThreadStream(res.body, abort);
  }

  /** Drops every connection, in flight or not (a stream opened while stopping included). */
  destroy(): Promise<void> {
    return this.dispatcher.destroy();
  }

  private headers(): Record<string, string> {
    return { authorization: `Bearer ${this.token}` };
  }
}

type Waiter = { match: (e: StreamEvent) => boolean; resolve: (e: StreamEvent) => void; reject: (error: Error) => void };

/** One thread's events as they arrive; `next` finds one already received or waits for it. */
export class ThreadStream {
  readonly events: StreamEvent[] = [];
  /** Date.now() when the server answered: events written after it came live, the others were replayed. */
  readonly openedAt = Date.now();
  private waiters: Waiter[] = [];
  private ended?: Error;

  constructor(
    body: AsyncIterable<Buffer>,
    private readonly abort: AbortController,
  ) {
    void this.read(body);
  }

  /** The first event (received or to come) that matches; rejects after `timeoutMs` or when the stream ends. */
  next(match: (e: StreamEvent) => boolean, what: string, timeoutMs = 120_000): Promise<StreamEvent> {
    const seen = this.events.find(match);
    if (seen) return Promise.resolve(seen);
    if (this.ended) return Promise.reject(new Error(`${what}: the stream ended (${this.ended.message})`));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        match,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(new Error(`${what}: the stream ended (${error.message})`));
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`${what}: not on the stream within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** The turn a posted message became (the member's `message` event carries it). */
  async turnOf(messageId: string): Promise<string> {
    const event = await this.next((e) => e.type === 'message' && e.data.id === messageId, `message ${messageId}`);
    return String(event.data.turn);
  }

  /** Events written after the stream opened (not replayed). */
  live(): StreamEvent[] {
    return this.events.filter((e) => Date.parse(String(e.data.ts)) >= this.openedAt);
  }

  close(): void {
    this.abort.abort();
  }

  private async read(body: AsyncIterable<Buffer>): Promise<void> {
    const decoder = new TextDecoder();
    const parser = new SseParser();
    try {
      for await (const chunk of body) {
        for (const event of parser.push(decoder.decode(chunk, { stream: true }))) this.parse(event, performance.now());
      }
      this.ended = new Error('closed by the server');
    } catch (error) {
      this.ended = error as Error;
    }
    for (const w of this.waiters.splice(0)) w.reject(this.ended);
  }

  /** One event off the stream (the parser skips comments, keep-alives included). */
  private parse(sse: SseEvent, at: number): void {
    if (sse.id === '') return;
    const id = Number(sse.id);
    const type = sse.type;
    const parsed = JSON.parse(sse.data) as Record<string, unknown>;
    const event: StreamEvent = { id, type, data: parsed, at, delay: Date.now() - Date.parse(String(parsed.ts)) };
    this.events.push(event);
    for (const w of this.waiters.filter((w) => w.match(event))) {
      this.waiters = this.waiters.filter((x) => x !== w);
      w.resolve(event);
    }
  }
}

/** An agent's reply or output for a turn: what "first reply" means in the benchmark. */
export function isReplyOf(turn: string): (e: StreamEvent) => boolean {
  return (e) => e.data.turn === turn && (e.type === 'progress' || (e.type === 'message' && (e.data.author as { kind?: string } | undefined)?.kind === 'agent'));
}

export function isDoneOf(turn: string): (e: StreamEvent) => boolean {
  return (e) => e.type === 'done' && e.data.turn === turn;
}
