/**
 * The throttle on the blocked-request feed, at its source (the proxy), so
 * that a sandbox hammering a blocked host cannot flood the server: at most
 * one event per (session, host, port) per second, and at most 50 per session
 * per second. Pure: no I/O, the time is passed in. Its memory stays bounded
 * whatever a sandbox does: a key is kept only for an event it let through
 * (50 a second per session at most) and only for as long as it matters.
 */
export interface FeedLimits {
  /** One event per (session, host, port) per this many ms. */
  perKeyMs: number;
  /** Events per session per window. */
  perSession: number;
  windowMs: number;
}

export const DEFAULT_FEED_LIMITS: FeedLimits = { perKeyMs: 1000, perSession: 50, windowMs: 1000 };

interface Window {
  start: number;
  count: number;
}

export class BlockedThrottle {
  private readonly limits: FeedLimits;
  /** When each (session, host, port) last got an event through. */
  private readonly lastSent = new Map<string, number>();
  private readonly windows = new Map<string, Window>();
  private lastSweep = -Infinity;

  constructor(limits: Partial<FeedLimits> = {}) {
    this.limits = { ...DEFAULT_FEED_LIMITS, ...limits };
  }

  /** Whether an event for this session, host and port may go out at `now` (ms); counts it when it may. */
  admit(event: { session: string; host: string; port: number }, now: number): boolean {
    this.sweep(now);
    const key = JSON.stringify([event.session, event.host, event.port]);
    const last = this.lastSent.get(key);
    if (last !== undefined && now - last < this.limits.perKeyMs) return false;
    let window = this.windows.get(event.session);
    if (!window || now - window.start >= this.limits.windowMs) {
      window = { start: now, count: 0 };
      this.windows.set(event.session, window);
    }
    if (window.count >= this.limits.perSession) return false;
    window.count += 1;
    this.lastSent.set(key, now);
    return true;
  }

  /** Entries held, for tests of the bound. */
  get size(): number {
    return this.lastSent.size + this.windows.size;
  }

  /** Forgets what can no longer refuse anything (at most once per window). */
  private sweep(now: number): void {
    if (now - this.lastSweep < Math.min(this.limits.perKeyMs, this.limits.windowMs)) return;
    this.lastSweep = now;
    for (const [key, at] of this.lastSent) if (now - at >= this.limits.perKeyMs) this.lastSent.delete(key);
    for (const [session, w] of this.windows) if (now - w.start >= this.limits.windowMs) this.windows.delete(session);
  }
}

/**
 * What one subscriber missed (throttled, or held back because it reads too
 * slowly), per session, to be told at most once per interval.
 */
export class DropLedger {
  private readonly counts = new Map<string, number>();
  private lastReport = -Infinity;

  constructor(private readonly intervalMs = 1000) {}

  add(session: string, count = 1): void {
    this.counts.set(session, (this.counts.get(session) ?? 0) + count);
  }

  /** Ms until a report may go out (0: now), or undefined when there is nothing to report. */
  due(now: number): number | undefined {
    if (this.counts.size === 0) return undefined;
    return Math.max(0, this.lastReport + this.intervalMs - now);
  }

  /** The counts to report now, and forgets them; nothing when it is too early or nothing was dropped. */
  take(now: number): Array<{ session: string; count: number }> {
    if (this.due(now) !== 0) return [];
    this.lastReport = now;
    const out = [...this.counts].map(([session, count]) => ({ session, count }));
    this.counts.clear();
    return out;
  }
}
