import type BetterSqlite3 from 'better-sqlite3';
import type { Logger } from '../log.js';
import type { ControlStore } from '../store/database.js';
import { insertUsageEvents, type UsageEvent } from './usage-repo.js';

/**
 * Group commit for usage events: events are queued and written together a
 * short while after the first of them (`delayMs`), so that a busy model
 * connection costs a fraction of a commit per answer, not a commit each.
 * Nothing waits on it: the meter counts what is queued (`pending`) against
 * budgets itself, and `flushed()` writes what is queued at once and resolves
 * when it is committed (or logged as lost). On SQLite the batch is one
 * transaction of a statement prepared once, with positional parameters (as
 * the audit log's appends): compiling a query per batch cost more than the write.
 */
export interface UsageWriterOptions {
  /** How long the first queued event waits for others (ms). */
  delayMs?: number;
  /** Events per statement or transaction at most. */
  maxBatch?: number;
}

export class UsageWriter {
  private queue: UsageEvent[] = [];
  private writing: UsageEvent[] = [];
  private flushing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly delayMs: number;
  private readonly maxBatch: number;
  private sqliteInsert: ((events: readonly UsageEvent[]) => void) | undefined;

  constructor(
    private readonly store: ControlStore,
    private readonly logger?: Logger,
    options: UsageWriterOptions = {},
  ) {
    this.delayMs = options.delayMs ?? 20;
    this.maxBatch = options.maxBatch ?? 1000;
  }

  add(event: UsageEvent): void {
    this.queue.push(event);
    if (this.flushing || this.timer) return;
    if (this.queue.length >= this.maxBatch) return this.start();
    this.timer = setTimeout(() => this.start(), this.delayMs);
    this.timer.unref();
  }

  /** Queued or being written: not yet in the database. */
  get pending(): readonly UsageEvent[] {
    return this.writing.length === 0 ? this.queue : [...this.writing, ...this.queue];
  }

  /** Writes what is queued now, and resolves once everything queued before the call is committed (or logged as lost). */
  async flushed(): Promise<void> {
    if (this.timer) this.start();
    while (this.flushing) await this.flushing;
  }

  private start(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.flushing ??= this.drain();
  }

  private async drain(): Promise<void> {
    // A SQLite batch never awaits: without this the drain would end before `flushing` was even set.
    await null;
    while (this.queue.length > 0) {
      this.writing = this.queue.splice(0, this.maxBatch);
      try {
        const raw = this.store.sqlite;
        // Never inside a transaction Kysely holds open on the same connection.
        if (raw && !raw.inTransaction) this.insertSqlite(raw)(this.writing);
        else await insertUsageEvents(this.store.db, this.writing);
      } catch (error) {
        // Lost usage is under-counted spend: say so loudly, with what was lost.
        this.logger?.error({ err: error instanceof Error ? error.message : String(error), events: this.writing.length, sessions: [...new Set(this.writing.map((e) => e.sessionId))] }, 'usage events lost');
      }
      this.writing = [];
    }
    this.flushing = undefined;
  }

  private insertSqlite(raw: BetterSqlite3.Database): (events: readonly UsageEvent[]) => void {
    if (!this.sqliteInsert) {
      const insert = raw.prepare(
        'insert into usage_events (id, org_id, session_id, payer_kind, payer_id, channel_id, member_id, model, input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, cost, created_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      );
      const all = raw.transaction((events: readonly UsageEvent[]) => {
        for (const e of events) {
          // Who pays follows from the place (as usageRow has it): the org for channel work, the member for their DMs.
          const p = e.place;
          const counts = [e.model, e.inputTokens, e.outputTokens, e.cacheReadTokens, e.cacheCreationTokens, e.cost, e.createdAt];
          if (p.kind === 'channel') insert.run(e.id, e.orgId, e.sessionId, 'org', e.orgId, p.channelId, null, ...counts);
          else insert.run(e.id, e.orgId, e.sessionId, 'member', p.memberId, null, p.memberId, ...counts);
        }
      });
      this.sqliteInsert = (events) => all.immediate(events);
    }
    return this.sqliteInsert;
  }
}
