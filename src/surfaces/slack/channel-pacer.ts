/** Time as the pacer sees it; tests pass a virtual one. */
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** How often one message may change (an append to a stream, an update). */
export const UPDATE_INTERVAL_MS = 1000;

/**
 * Slack allows about one new message per second per channel, and a message
 * should not change more than about once a second. Each call reserves the
 * next free slot of its key before it waits, so concurrent callers queue up
 * in order instead of all going at the end of the same wait.
 */
export class ChannelPacer {
  private readonly messageIntervalMs: number;
  private readonly next = new Map<string, number>();

  constructor(messagesPerSecond: number, private readonly clock: Clock = systemClock) {
    if (!(messagesPerSecond > 0)) throw new Error(`slack.messagesPerSecond: expected a positive number, got ${messagesPerSecond}`);
    this.messageIntervalMs = 1000 / messagesPerSecond;
  }

  /** Resolves when a new message may be posted in `channel` (the slot is then taken). */
  newMessage(channel: string): Promise<void> {
    return this.take(`m:${channel}`, this.messageIntervalMs);
  }

  /** Resolves when the message `ts` of `channel` may change (the slot is then taken). */
  change(channel: string, ts: string): Promise<void> {
    return this.take(`u:${channel}:${ts}`, UPDATE_INTERVAL_MS);
  }

  /** How long a new message in `channel` would wait now (nothing is taken). */
  waitFor(channel: string): number {
    return Math.max(0, (this.next.get(`m:${channel}`) ?? 0) - this.clock.now());
  }

  private async take(key: string, intervalMs: number): Promise<void> {
    const now = this.clock.now();
    const at = Math.max(now, this.next.get(key) ?? 0);
    this.next.set(key, at + intervalMs);
    if (this.next.size > 10_000) this.prune(now);
    if (at > now) await this.clock.sleep(at - now);
  }

  /** Keys whose slot is free again are forgotten: one per channel and message ever seen would only grow. */
  private prune(now: number): void {
    for (const [key, at] of this.next) if (at <= now) this.next.delete(key);
  }
}
