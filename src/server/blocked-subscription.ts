import { createConnection, type Socket } from 'node:net';
import { z } from 'zod';
import type { BlockedEvent } from '../proxy/blocked-event.js';
import { BLOCKED_EVENT_LIMITS } from '../proxy/blocked-event.js';
import { GITHUB_EVENT_LIMITS, type GithubEvent } from '../proxy/github-event.js';
import { BUDGET_PERIODS, BUDGET_SCOPES } from '../usage/budgets.js';
import { MAX_CONTROL_LINE } from './control-protocol.js';

/**
 * The server's end of the proxy's blocked-request feed (`subscribe-blocked`
 * on the control socket): one connection held open, and opened again with
 * backoff (100 ms doubling to 2 s) whenever it ends — the supervisor restarts
 * a proxy that died, and its successor serves the same socket path. What the
 * proxy sends is data: each line is checked against its shape and dropped if
 * it does not fit; an over-long line ends the connection.
 */
export interface DroppedReport {
  session: string;
  count: number;
}

export interface SubscriptionOptions {
  /** Told when the proxy refuses the subscription or the connection fails (for the log). */
  onError?: (error: Error) => void;
  /** Told each time the proxy acknowledges a subscription (the first and every one after a reconnect). */
  onSubscribed?: () => void;
  /** A session's push that landed or pull request created (github-event.ts). */
  onGithub?: (event: GithubEvent) => void;
}

const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 2000;

// Limits one above the proxy's caps: a capped text ends in '…'.
const text = (max: number) => z.string().max(max + 1);
const blockedLine = z.object({
  event: z.literal('blocked'),
  session: text(256).min(1),
  ts: z.iso.datetime(),
  method: text(BLOCKED_EVENT_LIMITS.method),
  scheme: z.enum(['http', 'https']),
  host: text(BLOCKED_EVENT_LIMITS.host),
  port: z.number().int().min(0).max(65535),
  path: text(BLOCKED_EVENT_LIMITS.path),
  reason: text(BLOCKED_EVENT_LIMITS.reason),
  rule: text(BLOCKED_EVENT_LIMITS.rule).optional(),
  budget: z.strictObject({ scope: z.enum(BUDGET_SCOPES), period: z.enum(BUDGET_PERIODS) }).optional(),
});
const droppedLine = z.object({ event: z.literal('dropped'), session: text(256).min(1), count: z.number().int().positive() });
const L = GITHUB_EVENT_LIMITS;
const oid = z.string().regex(/^[0-9a-f]{40}$|^[0-9a-f]{64}$/);
const githubPushLine = z.object({
  event: z.literal('github'),
  kind: z.literal('push'),
  session: text(256).min(1),
  ts: z.iso.datetime(),
  repository: text(L.repository).min(3),
  refs: z
    .array(z.object({ ref: text(L.ref).min(1), action: z.enum(['create', 'update', 'delete']), oldOid: oid, newOid: oid, ok: z.boolean(), reason: text(L.reason).optional() }))
    .min(1)
    .max(L.refs),
});
const githubPullLine = z.object({
  event: z.literal('github'),
  kind: z.literal('pull-request'),
  session: text(256).min(1),
  ts: z.iso.datetime(),
  repository: text(L.repository).min(3),
  number: z.number().int().positive(),
  url: text(L.url).regex(/^https?:\/\/[\x21-\x7e]+$/),
  title: text(L.title).optional(),
  head: text(L.ref).optional(),
  base: text(L.ref).optional(),
});
const feedLine = z.union([blockedLine, droppedLine, githubPushLine, githubPullLine]);
const answer = z.object({ ok: z.boolean(), error: z.string().optional() });

export function subscribeBlocked(
  socketPath: string,
  onEvent: (event: BlockedEvent) => void,
  onDropped?: (report: DroppedReport) => void,
  options: SubscriptionOptions = {},
): { close(): void } {
  let closed = false;
  let socket: Socket | undefined;
  let timer: NodeJS.Timeout | undefined;
  let backoff = MIN_BACKOFF_MS;
  // A callback that throws must not end the feed; its error goes where the feed's go.
  const safely = (fn: () => void): void => {
    try {
      fn();
    } catch (error) {
      options.onError?.(error instanceof Error ? error : new Error(String(error)));
    }
  };

  const deliver = (line: string, subscribed: boolean): boolean => {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      return subscribed;
    }
    if (!subscribed) {
      const first = answer.safeParse(value);
      if (first.success && first.data.ok) {
        backoff = MIN_BACKOFF_MS;
        safely(() => options.onSubscribed?.());
        return true;
      }
      const why = first.success ? (first.data.error ?? 'refused') : 'an answer of the wrong shape';
      options.onError?.(new Error(`the Agent Proxy did not take the blocked-request subscription: ${why}`));
      socket?.destroy();
      return false;
    }
    const parsed = feedLine.safeParse(value);
    if (!parsed.success) return true;
    const data = parsed.data;
    if (data.event === 'blocked') {
      const { event: _kind, ...event } = data;
      safely(() => onEvent(event));
    } else if (data.event === 'github') {
      const { event: _kind, ...event } = data;
      safely(() => options.onGithub?.(event));
    } else safely(() => onDropped?.({ session: data.session, count: data.count }));
    return true;
  };

  const connect = (): void => {
    timer = undefined;
    if (closed) return;
    const s = createConnection(socketPath);
    socket = s;
    let buffer = '';
    let subscribed = false;
    // Decoded as a stream: a character split between two chunks stays whole.
    s.setEncoding('utf8');
    s.on('connect', () => s.write(`${JSON.stringify({ op: 'subscribe-blocked' })}\n`));
    s.on('data', (chunk: string) => {
      buffer += chunk;
      for (let end = buffer.indexOf('\n'); end >= 0 && end <= MAX_CONTROL_LINE && !s.destroyed; end = buffer.indexOf('\n')) {
        subscribed = deliver(buffer.slice(0, end), subscribed);
        buffer = buffer.slice(end + 1);
      }
      if (!s.destroyed && buffer.length > MAX_CONTROL_LINE) {
        options.onError?.(new Error('the Agent Proxy sent an over-long line on the blocked-request feed'));
        s.destroy();
      }
    });
    s.on('error', (error) => options.onError?.(error));
    s.on('close', () => {
      if (socket === s) socket = undefined;
      if (closed) return;
      timer = setTimeout(connect, backoff);
      timer.unref();
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    });
  };

  connect();
  return {
    close: () => {
      closed = true;
      clearTimeout(timer);
      socket?.destroy();
    },
  };
}
