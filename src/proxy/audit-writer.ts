import type { AuditEventInput } from '../audit/events.js';
import type { AuditLog } from '../audit/log.js';
import type { Logger } from '../log.js';
import { loggable } from './redact.js';

/**
 * Group commit for the proxy's audit events: events that arrive while a write
 * is in flight are appended together in the next transaction, so the cost per
 * request stays a fraction of a transaction under load. `append` resolves when
 * the event is committed. On close, everything pending is flushed.
 */
export class AuditWriter {
  private queue: Array<{ event: AuditEventInput; resolve: () => void; reject: (e: unknown) => void }> = [];
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly log: AuditLog,
    private readonly logger?: Logger,
  ) {}

  append(event: AuditEventInput): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ event, resolve, reject });
      if (!this.flushing) this.flushing = this.drain();
    });
  }

  async close(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private async drain(): Promise<void> {
    // Yield once so that events from the same tick share a transaction.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, 500);
      try {
        await this.log.appendMany(batch.map((b) => b.event));
        batch.forEach((b) => b.resolve());
      } catch (error) {
        this.logger?.error({ err: loggable(error), events: batch.length }, 'audit write failed');
        batch.forEach((b) => b.reject(error));
      }
    }
    this.flushing = undefined;
  }
}
