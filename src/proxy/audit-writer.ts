import type { AuditEventInput } from '../audit/events.js';
import type { Logger } from '../log.js';
import { loggable } from './redact.js';

export interface AuditWriterOptions {
  /**
   * How long a record (not a durable append) may wait for company on a busy
   * proxy before it is committed. Default 1 ms: nobody reading the log notices.
   */
  windowMs?: number;
  /** A batch this big is committed at once, window or not. Default 256. */
  maxBatch?: number;
}

/** Where batches are committed: the audit log (audit/log.ts), or, in a worker of `tagbox proxy --workers`, the primary's. */
export interface AuditBatches {
  /** Resolves once the whole batch is committed, in order. */
  appendMany(events: AuditEventInput[]): Promise<unknown>;
}

interface Waiter {
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit for the proxy's audit events, in two strengths:
 * - `append` is for a record that must be durable before the caller acts (a
 *   credential's use, before the credential is sent): it resolves once its
 *   transaction has committed.
 * - `record` is for what may follow a little later (the end of a request: its
 *   status and bytes): it returns nothing, and is committed with the next batch.
 * When to commit:
 * - a durable append: on the next turn of the event loop, with whatever else
 *   that turn queued (on a busy proxy a turn holds several requests' events).
 *   It never waits on the clock: a credentialed request waits for its commit,
 *   and a commit window added its length to every such request's latency
 *   (measured: a 1 ms window cost a quarter of the throughput at 8 connections);
 * - a record, on a quiet writer (the last commit was over `windowMs` ago): on
 *   the next turn too; on a busy one it waits up to `windowMs` for company (or
 *   for the next durable append, which takes it along).
 * Any batch of `maxBatch` events is committed at once. Events keep their order
 * in the chain. A kill -9 loses at most the recorded (not awaited) events of
 * the last window; never an appended one whose promise had resolved.
 */
export class AuditWriter {
  private queue: AuditEventInput[] = [];
  private waiters: Waiter[] = [];
  private writing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private soon = false;
  private lastCommit = Number.NEGATIVE_INFINITY;
  private readonly windowMs: number;
  private readonly maxBatch: number;

  constructor(
    private readonly log: AuditBatches,
    private readonly logger?: Logger,
    options: AuditWriterOptions = {},
  ) {
    this.windowMs = options.windowMs ?? 1;
    this.maxBatch = options.maxBatch ?? 256;
  }

  /** Queues the event and resolves when it is committed (rejects if its batch failed). */
  append(event: AuditEventInput): Promise<void> {
    this.queue.push(event);
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    this.flushSoon();
    return done;
  }

  /** `append` for several events at once, in order: one promise for all (a worker's batch, committed by its primary). */
  appendAll(events: AuditEventInput[]): Promise<void> {
    for (const event of events) this.queue.push(event);
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    this.flushSoon();
    return done;
  }

  /** Queues the event to be committed with the next batch; a failure is logged, not thrown. */
  record(event: AuditEventInput): void {
    this.queue.push(event);
    if (this.queue.length >= this.maxBatch || performance.now() - this.lastCommit >= this.windowMs) this.flushSoon();
    else this.timer ??= setTimeout(() => this.flushNow(), this.windowMs);
  }

  /** Commits everything queued so far (and what arrives meanwhile); resolves when it is written. */
  async flush(): Promise<void> {
    this.flushNow();
    while (this.writing) await this.writing;
  }

  close(): Promise<void> {
    return this.flush();
  }

  /** On the next turn, so that events of the same turn share a transaction. */
  private flushSoon(): void {
    if (this.soon) return;
    this.soon = true;
    setImmediate(() => {
      this.soon = false;
      this.flushNow();
    });
  }

  private flushNow(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    // Only with something to write: a drain that found nothing would end before it was stored.
    if (!this.writing && this.queue.length > 0) this.writing = this.drain();
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue;
      const waiters = this.waiters;
      this.queue = [];
      this.waiters = [];
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = undefined;
      }
      try {
        await this.log.appendMany(batch);
        this.lastCommit = performance.now();
        for (const w of waiters) w.resolve();
      } catch (error) {
        this.logger?.error({ err: loggable(error), events: batch.length }, 'audit write failed');
        for (const w of waiters) w.reject(error);
      }
    }
    this.writing = undefined;
  }
}
