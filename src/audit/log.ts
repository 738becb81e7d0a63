import type BetterSqlite3 from 'better-sqlite3';
import { sql, type Kysely } from 'kysely';
import type { ControlStore } from '../store/database.js';
import type { Database } from '../store/tables.js';
import { canonicalJson, chainHash, eventColumns, GENESIS_HASH } from './chain.js';
import { auditCheckpointsOf } from './checkpoints.js';
import type { AuditEvent, AuditEventInput, AuditEventType } from './events.js';
import { verifyAuditLog, type VerifyOptions, type VerifyResult } from './verify.js';
import { takeAuditLock, withAuditWriteLock } from './write-lock.js';

export { withAuditWriteLock } from './write-lock.js';
export type { VerifyOptions, VerifyResult } from './verify.js';

export interface AuditQuery {
  type?: AuditEventType;
  /** ISO time; events at or after it. */
  since?: string;
  until?: string;
  actor?: string;
  session?: string;
  channel?: string;
  outcome?: string;
  /** The event's `host` field (egress and credential-use events). */
  host?: string;
  /**
   * Who asked: events the member did (actor), and events of the threads they
   * started (a session's egress carries the session, not a person).
   */
  member?: string;
  limit?: number;
}

/**
 * The append-only audit log. One writer discipline keeps the chain linear even
 * with several processes: on SQLite an IMMEDIATE transaction (the database's
 * single write lock), on Postgres a transaction-scoped advisory lock. The
 * sequence number is the primary key, so a fork cannot be committed anyway.
 * Where the store has checkpoints enabled (checkpoints.ts), every append
 * schedules a signed checkpoint (at most one a second, off the request path).
 */
export class AuditLog {
  private sqliteAppend: BetterSqlite3.Transaction<(events: AuditEventInput[]) => AuditEvent[]> | undefined;

  constructor(private readonly store: ControlStore) {}

  async append(event: AuditEventInput): Promise<AuditEvent> {
    const [stored] = await this.appendMany([event]);
    return stored!;
  }

  /** Appends events in one transaction, in order; cheaper per event under load. */
  async appendMany(events: AuditEventInput[]): Promise<AuditEvent[]> {
    if (events.length === 0) return [];
    // The fast path shares the connection with Kysely: never run it inside a
    // transaction Kysely has open (it would nest, and share that transaction's fate).
    const stored =
      this.store.sqlite && !this.store.sqlite.inTransaction
        ? this.appendSqlite(events, this.store.sqlite)
        : await withAuditWriteLock(this.store, (trx) => appendWithin(trx, events));
    auditCheckpointsOf(this.store)?.noteAppended();
    return stored;
  }

  /**
   * Appends inside the caller's write transaction, so that the events commit
   * (or roll back) with the change they record. On Postgres this takes the
   * audit lock — always the last lock a transaction takes, so no cycle can form.
   */
  async appendIn(trx: Kysely<Database>, events: AuditEventInput[]): Promise<AuditEvent[]> {
    if (events.length === 0) return [];
    await takeAuditLock(trx, this.store);
    const stored = await appendWithin(trx, events);
    // Scheduled, not run: the checkpoint waits for the lock this transaction holds.
    auditCheckpointsOf(this.store)?.noteAppended();
    return stored;
  }

  /**
   * SQLite: the same discipline (one IMMEDIATE transaction: read the head,
   * append) with statements prepared once. The proxy appends on every request;
   * compiling and preparing the queries anew each time cost more than the write.
   */
  private appendSqlite(events: AuditEventInput[], raw: BetterSqlite3.Database): AuditEvent[] {
    this.sqliteAppend ??= sqliteAppender(raw);
    return this.sqliteAppend.immediate(events);
  }

  /** Events oldest first, filtered. */
  async *query(filter: AuditQuery = {}): AsyncGenerator<AuditEvent> {
    const pageSize = 1000;
    let after = 0;
    let remaining = filter.limit ?? Number.POSITIVE_INFINITY;
    while (remaining > 0) {
      let q = this.store.db
        .selectFrom('audit_events')
        .select(['seq', 'data', 'hash'])
        .where('seq', '>', after)
        .orderBy('seq', 'asc')
        .limit(Math.min(pageSize, remaining));
      if (filter.type) q = q.where('type', '=', filter.type);
      if (filter.since) q = q.where('ts', '>=', filter.since);
      if (filter.until) q = q.where('ts', '<', filter.until);
      if (filter.actor) q = q.where('actor', '=', filter.actor);
      if (filter.session) q = q.where('session_id', '=', filter.session);
      if (filter.channel) q = q.where('channel_id', '=', filter.channel);
      if (filter.outcome) q = q.where('outcome', '=', filter.outcome);
      if (filter.host) q = q.where(this.jsonField('host'), '=', filter.host.toLowerCase());
      if (filter.member) {
        const member = filter.member;
        q = q.where((eb) => eb.or([eb('actor', '=', member), eb('session_id', 'in', eb.selectFrom('sessions').select('sessions.id').where('sessions.created_by', '=', member))]));
      }
      const rows = await q.execute();
      for (const row of rows) yield { ...(JSON.parse(row.data) as AuditEvent), hash: row.hash };
      if (rows.length < pageSize) return;
      after = rows[rows.length - 1]!.seq;
      remaining -= rows.length;
    }
  }

  /** A top-level text field of the stored (hashed) event JSON, in the store's dialect. */
  private jsonField(field: 'host') {
    return this.store.location.dialect === 'postgres' ? sql<string>`(data::jsonb ->> ${field})` : sql<string>`json_extract(data, ${`$.${field}`})`;
  }

  /**
   * Walks the whole chain and its checkpoints; reports the first problem.
   * Without options it trusts the key (and reads the checkpoint file) of the
   * store's checkpointer, if it has one.
   */
  verify(options?: VerifyOptions): Promise<VerifyResult> {
    const checkpoints = auditCheckpointsOf(this.store);
    const trusted = checkpoints?.trustedKeys();
    return verifyAuditLog(
      this.store,
      options ?? { ...(trusted ? { trusted } : {}), ...(checkpoints ? { checkpointFile: checkpoints.checkpointFile } : {}) },
    );
  }
}

/** The SQLite append as one transaction function, its statements prepared once (built per batch, it cost more than the write). */
function sqliteAppender(raw: BetterSqlite3.Database) {
  const head = raw.prepare('select seq, hash from audit_events order by seq desc limit 1');
  const anchor = raw.prepare('select seq, hash from audit_anchor limit 1');
  const insert = raw.prepare(
    'insert into audit_events (seq, ts, type, outcome, actor, session_id, channel_id, data, prev_hash, hash) values (@seq, @ts, @type, @outcome, @actor, @session_id, @channel_id, @data, @prev_hash, @hash)',
  );
  return raw.transaction((events: AuditEventInput[]): AuditEvent[] => {
    const start = (head.get() ?? anchor.get()) as { seq: number; hash: string } | undefined;
    const { rows, stored } = chainRows(events, start);
    for (const row of rows) insert.run(row);
    return stored;
  });
}

/** Reads the chain head and appends after it; the caller holds the write lock. */
async function appendWithin(trx: Kysely<Database>, events: AuditEventInput[]): Promise<AuditEvent[]> {
  const last = await trx.selectFrom('audit_events').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirst();
  const anchor = last ? undefined : await trx.selectFrom('audit_anchor').select(['seq', 'hash']).executeTakeFirst();
  const { rows, stored } = chainRows(events, last ?? anchor);
  // Chunked so that a large batch stays under the bound-parameter limit.
  for (let i = 0; i < rows.length; i += 50) await trx.insertInto('audit_events').values(rows.slice(i, i + 50)).execute();
  return stored;
}

/** Links new events onto the chain after `start` (the head, or the retention anchor). */
function chainRows(events: AuditEventInput[], start: { seq: number; hash: string } | undefined) {
  let seq = start?.seq ?? 0;
  let prev = start?.hash ?? GENESIS_HASH;
  const stored: AuditEvent[] = [];
  const rows = events.map((input) => {
    seq += 1;
    const event: AuditEventInput & { ts: string; seq: number } = { ...input, ts: input.ts ?? new Date().toISOString(), seq };
    const data = canonicalJson(event);
    const hash = chainHash(prev, data);
    stored.push({ ...event, hash } as AuditEvent);
    // The filter columns come from the hashed event, by the function verify checks them with.
    const row = { seq, ...eventColumns(event), data, prev_hash: prev, hash };
    prev = hash;
    return row;
  });
  return { rows, stored };
}
