import type BetterSqlite3 from 'better-sqlite3';
import type { Kysely } from 'kysely';
import type { ControlStore } from '../store/database.js';
import type { Database } from '../store/tables.js';
import { failure, invalidInput } from '../errors.js';
import { GENESIS_HASH, verifyLinks } from './chain.js';
import { AuditLog, withAuditWriteLock } from './log.js';

export interface PruneOptions {
  /** ISO time: events before it may go. */
  before?: string;
  /** Or: events older than this many days (from now). */
  retentionDays?: number;
  /** Count what would go; delete nothing. */
  dryRun?: boolean;
  /** Who pruned, for the admin-change event a real prune records. */
  actor?: string;
  now?: Date;
}

export interface PruneResult {
  /** The cut actually used (ISO). */
  before: string;
  /** Events deleted (or that would be, on a dry run). */
  pruned: number;
  /** The retained chain now starts after this event (the anchor); 0 when nothing was ever pruned. */
  anchorSeq: number;
  dryRun: boolean;
}

interface Cut {
  /** Current anchor: the chain starts after it. */
  from: { seq: number; hash: string };
  /** Last event to delete; equal to from.seq when nothing goes. */
  through: number;
}

/**
 * Retention pruning that keeps what remains verifiable. Only a prefix of the
 * chain can go: everything up to (not including) the first event at or after
 * the cut. An event stamped before the cut but committed after a newer one
 * (the proxy's group commit) waits for the next prune rather than punching a
 * hole. The anchor moves to the last deleted event's (seq, hash), so verify()
 * starts there and still catches edits and deletions in what remains; a row
 * deleted from the head by hand, without moving the anchor, is still a break.
 */
export async function pruneAudit(store: ControlStore, options: PruneOptions): Promise<PruneResult> {
  const before = cutTime(options);
  const planned = await planCut(store.db, before);
  // Refuse to prune a part that does not verify: moving the anchor over a
  // tampered stretch would launder the tampering.
  if (planned.through > planned.from.seq) await verifyPrefix(store, planned);
  if (options.dryRun) {
    return { before, pruned: planned.through - planned.from.seq, anchorSeq: planned.from.seq, dryRun: true };
  }

  const raw = store.sqlite;
  const result =
    raw && !raw.inTransaction
      ? pruneSqlite(raw, planned, before)
      : await withAuditWriteLock(store, async (trx) => {
          const cut = narrow(await planCut(trx, before), planned);
          if (cut.through <= cut.from.seq) return { pruned: 0, anchorSeq: cut.from.seq };
          const last = await trx.selectFrom('audit_events').select('hash').where('seq', '=', cut.through).executeTakeFirst();
          if (!last) throw altered(`event ${cut.through} is missing`);
          const deleted = await trx.deleteFrom('audit_events').where('seq', '<=', cut.through).executeTakeFirst();
          checkCount(Number(deleted.numDeletedRows), cut);
          await trx.deleteFrom('audit_anchor').execute();
          await trx.insertInto('audit_anchor').values({ id: 1, seq: cut.through, hash: last.hash }).execute();
          return { pruned: cut.through - cut.from.seq, anchorSeq: cut.through };
        });

  // The prune itself is an administrative decision: record it (invariant 8).
  if (result.pruned > 0) {
    await new AuditLog(store).append({
      type: 'admin-change',
      actor: options.actor ?? 'system',
      target: 'audit-retention',
      changed: ['audit_events'],
      pruned: result.pruned,
      before,
      anchorSeq: result.anchorSeq,
    });
  }
  return { before, ...result, dryRun: false };
}

/**
 * SQLite: the locked step in one synchronous IMMEDIATE transaction, like the
 * append fast path, so the write lock is never held across an await (another
 * connection of this process busy-waiting on it would block the event loop).
 */
function pruneSqlite(raw: BetterSqlite3.Database, planned: Cut, before: string): { pruned: number; anchorSeq: number } {
  const step = raw.transaction(() => {
    const anchor = raw.prepare('select seq, hash from audit_anchor limit 1').get() as { seq: number; hash: string } | undefined;
    const from = anchor ?? { seq: 0, hash: GENESIS_HASH };
    const first = raw.prepare('select min(seq) as seq from audit_events where ts >= ?').get(before) as { seq: number | null };
    const head = raw.prepare('select max(seq) as seq from audit_events').get() as { seq: number | null };
    const cut = narrow({ from, through: Math.max(first.seq !== null ? first.seq - 1 : (head.seq ?? from.seq), from.seq) }, planned);
    if (cut.through <= cut.from.seq) return { pruned: 0, anchorSeq: cut.from.seq };
    const last = raw.prepare('select hash from audit_events where seq = ?').get(cut.through) as { hash: string } | undefined;
    if (!last) throw altered(`event ${cut.through} is missing`);
    checkCount(raw.prepare('delete from audit_events where seq <= ?').run(cut.through).changes, cut);
    raw.prepare('delete from audit_anchor').run();
    raw.prepare('insert into audit_anchor (id, seq, hash) values (1, ?, ?)').run(cut.through, last.hash);
    return { pruned: cut.through - cut.from.seq, anchorSeq: cut.through };
  });
  return step.immediate();
}

/**
 * The cut re-planned under the lock (appends or another prune may have run
 * since), kept inside the stretch verified before taking it: events appended
 * meanwhile with older stamps wait for the next prune.
 */
function narrow(now: Cut, planned: Cut): Cut {
  if (now.from.seq < planned.from.seq) throw altered('the retention anchor moved backwards');
  return { from: now.from, through: Math.min(now.through, planned.through) };
}

function checkCount(count: number, cut: Cut): void {
  if (count !== cut.through - cut.from.seq) throw altered(`expected to delete ${cut.through - cut.from.seq} events, found ${count}`);
}

function altered(detail: string) {
  return failure(`audit prune: ${detail}; the log was altered`, 'audit_broken');
}

function cutTime(options: PruneOptions): string {
  if (options.before !== undefined) {
    const ms = Date.parse(options.before);
    if (Number.isNaN(ms)) throw invalidInput(`before: expected an ISO 8601 time, got "${options.before}"`);
    return new Date(ms).toISOString();
  }
  const days = options.retentionDays;
  if (days === undefined || !Number.isFinite(days) || days < 0) {
    throw invalidInput('retentionDays: expected a number of days (0 or more)');
  }
  return new Date((options.now ?? new Date()).getTime() - days * 86_400_000).toISOString();
}

async function planCut(q: Kysely<Database>, before: string): Promise<Cut> {
  const anchor = await q.selectFrom('audit_anchor').select(['seq', 'hash']).executeTakeFirst();
  const from = anchor ?? { seq: 0, hash: GENESIS_HASH };
  const firstKept = await q
    .selectFrom('audit_events')
    .select((eb) => eb.fn.min('seq').as('seq'))
    .where('ts', '>=', before)
    .executeTakeFirst();
  let through: number;
  if (firstKept?.seq != null) {
    through = Number(firstKept.seq) - 1;
  } else {
    const head = await q.selectFrom('audit_events').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirst();
    through = head?.seq != null ? Number(head.seq) : from.seq;
  }
  return { from, through: Math.max(through, from.seq) };
}

async function verifyPrefix(store: ControlStore, cut: Cut): Promise<void> {
  let prev = cut.from.hash;
  let seq = cut.from.seq + 1;
  while (seq <= cut.through) {
    const rows = await store.db
      .selectFrom('audit_events')
      .select(['seq', 'data', 'prev_hash', 'hash'])
      .where('seq', '>=', seq)
      .where('seq', '<=', cut.through)
      .orderBy('seq', 'asc')
      .limit(2000)
      .execute();
    if (rows.length === 0) break;
    const broken = verifyLinks(rows, prev, seq);
    if (broken) {
      throw failure(`audit prune refused: event ${broken.seq} in the part to prune does not verify (${broken.problem})`, 'audit_broken');
    }
    const last = rows[rows.length - 1]!;
    prev = last.hash;
    seq = last.seq + 1;
  }
  if (seq !== cut.through + 1) {
    throw failure(`audit prune refused: event ${seq} in the part to prune is missing`, 'audit_broken');
  }
}
