import type { Socket } from 'node:net';
import type { FeedLine } from '../server/control-protocol.js';
import type { BlockedEvent } from './blocked-event.js';
import type { GithubEvent } from './github-event.js';
import { BlockedThrottle, DropLedger, type FeedLimits } from './blocked-feed.js';

/**
 * The proxy daemon's `subscribe-blocked` connections (the server's, checked
 * by SO_PEERCRED before they get here): every blocked event that passes the
 * throttle goes to each of them as one line. A subscriber that reads too
 * slowly is not buffered for without bound: past `maxBufferedBytes` queued on
 * its socket, its events are dropped and counted, and what each subscriber
 * missed is told to it at most once a second.
 */
export interface BlockedSubscribersOptions {
  limits?: Partial<FeedLimits>;
  /** Bytes queued on one subscriber's socket beyond which its events are dropped. */
  maxBufferedBytes?: number;
  reportIntervalMs?: number;
  now?: () => number;
}

interface Subscriber {
  socket: Socket;
  missed: DropLedger;
  timer?: NodeJS.Timeout;
}

export class BlockedSubscribers {
  private readonly subscribers = new Set<Subscriber>();
  private readonly throttle: BlockedThrottle;
  private readonly maxBuffered: number;
  private readonly interval: number;
  private readonly now: () => number;

  constructor(options: BlockedSubscribersOptions = {}) {
    this.throttle = new BlockedThrottle(options.limits);
    this.maxBuffered = options.maxBufferedBytes ?? 1024 * 1024;
    this.interval = options.reportIntervalMs ?? 1000;
    this.now = options.now ?? Date.now;
  }

  get count(): number {
    return this.subscribers.size;
  }

  add(socket: Socket): void {
    const subscriber: Subscriber = { socket, missed: new DropLedger(this.interval) };
    this.subscribers.add(subscriber);
    socket.once('close', () => {
      this.subscribers.delete(subscriber);
      clearTimeout(subscriber.timer);
    });
  }

  publish(event: BlockedEvent): void {
    // Nobody listening: a live feed, not a record (the audit log is that).
    if (this.subscribers.size === 0) return;
    // The event's own time, so that its `ts` shows the throttle's spacing exactly.
    const at = Date.parse(event.ts);
    const admitted = this.throttle.admit(event, Number.isFinite(at) ? at : this.now());
    const line = admitted ? lineOf({ event: 'blocked', ...event }) : undefined;
    for (const subscriber of this.subscribers) {
      if (line !== undefined && this.hasRoom(subscriber)) subscriber.socket.write(line);
      else {
        subscriber.missed.add(event.session);
        this.schedule(subscriber);
      }
    }
  }

  /**
   * A session's GitHub event (a push landed, a pull request created): not
   * throttled — each is a write GitHub accepted — but, like the rest, never
   * queued beyond a slow subscriber's room (then counted as missed).
   */
  publishGithub(event: GithubEvent): void {
    if (this.subscribers.size === 0) return;
    const line = lineOf({ event: 'github', ...event });
    for (const subscriber of this.subscribers) {
      if (this.hasRoom(subscriber)) subscriber.socket.write(line);
      else {
        subscriber.missed.add(event.session);
        this.schedule(subscriber);
      }
    }
  }

  /** Ends every subscription (the daemon is stopping; the server reconnects to its successor). */
  close(): void {
    for (const subscriber of this.subscribers) {
      clearTimeout(subscriber.timer);
      subscriber.socket.destroy();
    }
    this.subscribers.clear();
  }

  private hasRoom(subscriber: Subscriber): boolean {
    return !subscriber.socket.destroyed && subscriber.socket.writableLength <= this.maxBuffered;
  }

  private schedule(subscriber: Subscriber, wait = subscriber.missed.due(this.now())): void {
    if (subscriber.timer || wait === undefined) return;
    subscriber.timer = setTimeout(() => {
      subscriber.timer = undefined;
      this.report(subscriber);
    }, wait);
    subscriber.timer.unref();
  }

  private report(subscriber: Subscriber): void {
    if (!this.subscribers.has(subscriber)) return;
    // Still backed up: keep counting, try again later.
    if (!this.hasRoom(subscriber)) return this.schedule(subscriber, this.interval);
    for (const { session, count } of subscriber.missed.take(this.now())) subscriber.socket.write(lineOf({ event: 'dropped', session, count }));
    this.schedule(subscriber);
  }
}

function lineOf(line: FeedLine): string {
  return `${JSON.stringify(line)}\n`;
}
