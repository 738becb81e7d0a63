import type BetterSqlite3 from 'better-sqlite3';
import type { ControlStore } from '../store/database.js';
import { failure, invalidInput } from '../errors.js';
import { ChainWalker, GENESIS_HASH, type ChainLink } from './chain.js';
import { checkpointSignatureProblem, fromRow, toRow, type Checkpoint, type TrustedKeys } from './checkpoint.js';
import type { Point } from './checkpoint-decision.js';
import { auditCheckpointsOf } from './checkpoints.js';
import { AuditLog } from './log.js';
import { pages } from './pages.js';
import type { SigningKey } from './signing-key.js';
import { withAuditWriteLock } from './write-lock.js';

export interface PruneOptions {
  /** ISO time: events before it may go. */
  before?: string;
  /** Or: events older than this many days (from now). */
  retentionDays?: number;
  /** Count what would go; delete nothing (a checkpoint of the head is still signed). */
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

/** What a prune removes: the events after `from` through `through`, verified and covered by a signed checkpoint. */
interface Plan {
  from: Point;
  through: number;
  throughHash: string;
}

/**
 * Retention pruning that keeps what remains verifiable, and launders nothing.
 *
 * - Only a prefix of the chain goes: every event before the first one whose
 *   *hashed* `ts` is at or after the cut (never the `ts` column, which the
 *   hash does not protect by itself). An event stamped before the cut but
 *   committed after a newer one (the proxy's group commit) waits for a later
 *   prune rather than punching a hole.
 * - Everything removed is verified first — links, hashes, columns — and must
 *   lie under a signed head checkpoint that matches the chain: otherwise a
 *   rewritten, recomputed stretch would be deleted and forgotten. Events not
 *   yet under any checkpoint wait for a later prune. The prune therefore needs
 *   the audit signing key, and signs the head first.
 * - In one transaction under the audit write lock it deletes the prefix and
 *   the checkpoints on it, moves the anchor (audit_anchor) to the last deleted
 *   event, and signs an anchor checkpoint there: an anchor moved by hand has
 *   none, and verify says so.
 */
export async function pruneAudit(store: ControlStore, options: PruneOptions): Promise<PruneResult> {
  const before = cutTime(options);
  const checkpoints = auditCheckpointsOf(store);
  if (!checkpoints) throw failure('audit prune: audit checkpoints are not enabled for this database, so nothing could be checked or signed', 'audit_key_unavailable');
  const key = checkpoints.signingKey();
  // What is pruned must lie under a signed checkpoint: sign the head first. This
  // refuses when the chain no longer continues the newest checkpoint.
  await checkpoints.checkpoint({ strict: 'audit prune refused' });

  for (let attempt = 0; attempt < 3; attempt++) {
    const plan = await planPrune(store, Date.parse(before), key.trusted());
    const count = plan.through - plan.from.seq;
    if (count <= 0 || options.dryRun) return { before, pruned: Math.max(0, count), anchorSeq: plan.from.seq, dryRun: options.dryRun === true };
    const raw = store.sqlite;
    const done = raw && !raw.inTransaction ? pruneSqlite(raw, plan, key) : await pruneKysely(store, plan, key);
    // Another prune moved the anchor meanwhile: plan again from there.
    if (!done) continue;

    // The prune itself is an administrative decision: record it (invariant 8), and sign it.
    await new AuditLog(store).append({
      type: 'admin-change',
      actor: options.actor ?? 'system',
      target: 'audit-retention',
      changed: ['audit_events'],
      pruned: count,
      before,
      anchorSeq: plan.through,
    });
    await checkpoints.checkpoint();
    return { before, pruned: count, anchorSeq: plan.through, dryRun: false };
  }
  throw failure('audit prune: the retention anchor kept moving (another prune is running); try again', 'audit_busy');
}

/**
 * Walks the chain from the anchor, verifying as it goes, to find the cut (by
 * the verified `ts`) and a signed checkpoint at or after it. Throws on any
 * problem in the stretch it walks.
 */
async function planPrune(store: ControlStore, beforeMs: number, trusted: TrustedKeys): Promise<Plan> {
  const db = store.db;
  const anchor = await db.selectFrom('audit_anchor').select(['seq', 'hash']).executeTakeFirst();
  const from = anchor ? { seq: Number(anchor.seq), hash: anchor.hash } : { seq: 0, hash: GENESIS_HASH };
  if (anchor) {
    const row = await db.selectFrom('audit_checkpoints').selectAll().where('seq', '=', from.seq).where('kind', '=', 'anchor').executeTakeFirst();
    const bad = row ? checkpointSignatureProblem(fromRow(row), trusted) : null;
    const problem = !row ? 'it has no signed anchor checkpoint' : bad ? `its checkpoint ${bad}` : row.hash !== from.hash ? 'it does not match its signed checkpoint' : null;
    if (problem) throw refused(`the retention anchor (event ${from.seq}) was moved by hand: ${problem}`);
  }

  const cps = pages(async (after) => (await db.selectFrom('audit_checkpoints').selectAll().where('seq', '>', after).orderBy('seq', 'asc').orderBy('kind', 'asc').limit(2000).execute()).map(fromRow), from.seq);
  const events = pages(
    (after) =>
      db
        .selectFrom('audit_events')
        .select(['seq', 'ts', 'type', 'outcome', 'actor', 'session_id', 'channel_id', 'data', 'prev_hash', 'hash'])
        .where('seq', '>', after)
        .orderBy('seq', 'asc')
        .limit(2000)
        .execute(),
    from.seq,
  );
  const walker = new ChainWalker(from);
  let cut: Point | undefined;
  let covered: Point = from;
  let cp: Checkpoint | undefined = await cps.next();
  for (let link = await events.next(); link !== undefined; link = await events.next()) {
    const broken = walker.check(link as ChainLink);
    if (broken) throw refused(`event ${broken.seq} in the part to prune does not verify (${broken.problem})`);
    const ts = Date.parse(String(walker.parsed.ts));
    // The first event at or after the cut (by its hashed ts) stays, and everything after it.
    if (!cut && !(ts < beforeMs)) cut = { seq: Number(link.seq) - 1, hash: link.prev_hash };
    while (cp && cp.seq === Number(link.seq)) {
      const bad = checkpointSignatureProblem(cp, trusted);
      if (bad) throw refused(`the checkpoint at event ${cp.seq} ${bad}`);
      if (cp.kind !== 'head') throw refused(`an anchor checkpoint at event ${cp.seq} lies inside the chain`);
      if (cp.hash !== link.hash) throw refused(`event ${cp.seq} does not match its signed checkpoint (the chain was rewritten)`);
      covered = { seq: cp.seq, hash: cp.hash };
      cp = await cps.next();
    }
    if (cut && covered.seq >= cut.seq) break;
  }
  cut ??= walker.head;
  // Events older than the cut but not yet under a checkpoint wait for a later prune.
  const end = covered.seq < cut.seq ? covered : cut;
  return { from, through: end.seq, throughHash: end.hash };
}

/**
 * SQLite: the locked step in one synchronous IMMEDIATE transaction, like the
 * append fast path, so the write lock is never held across an await (another
 * connection of this process busy-waiting on it would block the event loop).
 * False when the anchor moved since the plan.
 */
function pruneSqlite(raw: BetterSqlite3.Database, plan: Plan, key: SigningKey): boolean {
  const step = raw.transaction(() => {
    const anchor = raw.prepare('select seq, hash from audit_anchor limit 1').get() as Point | undefined;
    if (!sameStart(anchor, plan)) return false;
    const last = raw.prepare('select hash from audit_events where seq = ?').get(plan.through) as { hash: string } | undefined;
    checkLast(last, plan);
    checkCount(raw.prepare('delete from audit_events where seq <= ?').run(plan.through).changes, plan);
    raw.prepare('delete from audit_checkpoints where seq <= ?').run(plan.through);
    raw.prepare('delete from audit_anchor').run();
    raw.prepare('insert into audit_anchor (id, seq, hash) values (1, ?, ?)').run(plan.through, plan.throughHash);
    raw.prepare('insert into audit_checkpoints (seq, kind, hash, ts, key_id, signature) values (@seq, @kind, @hash, @ts, @key_id, @signature)').run(toRow(anchorCheckpoint(key, plan)));
    return true;
  });
  return step.immediate();
}

function pruneKysely(store: ControlStore, plan: Plan, key: SigningKey): Promise<boolean> {
  return withAuditWriteLock(store, async (trx) => {
    const anchor = await trx.selectFrom('audit_anchor').select(['seq', 'hash']).executeTakeFirst();
    if (!sameStart(anchor, plan)) return false;
    checkLast(await trx.selectFrom('audit_events').select('hash').where('seq', '=', plan.through).executeTakeFirst(), plan);
    const deleted = await trx.deleteFrom('audit_events').where('seq', '<=', plan.through).executeTakeFirst();
    checkCount(Number(deleted.numDeletedRows), plan);
    await trx.deleteFrom('audit_checkpoints').where('seq', '<=', plan.through).execute();
    await trx.deleteFrom('audit_anchor').execute();
    await trx.insertInto('audit_anchor').values({ id: 1, seq: plan.through, hash: plan.throughHash }).execute();
    await trx.insertInto('audit_checkpoints').values(toRow(anchorCheckpoint(key, plan))).execute();
    return true;
  });
}

function anchorCheckpoint(key: SigningKey, plan: Plan): Checkpoint {
  return key.sign({ kind: 'anchor', seq: plan.through, hash: plan.throughHash, ts: new Date().toISOString() });
}

function sameStart(anchor: Point | undefined, plan: Plan): boolean {
  return (anchor ? Number(anchor.seq) : 0) === plan.from.seq && (anchor?.hash ?? GENESIS_HASH) === plan.from.hash;
}

function checkLast(last: { hash: string } | undefined, plan: Plan): void {
  if (!last) throw altered(`event ${plan.through} is missing`);
  if (last.hash !== plan.throughHash) throw altered(`event ${plan.through} changed while the prune was being planned`);
}

function checkCount(count: number, plan: Plan): void {
  if (count !== plan.through - plan.from.seq) throw altered(`expected to delete ${plan.through - plan.from.seq} events, found ${count}`);
}

function refused(detail: string) {
  return failure(`audit prune refused: ${detail}; the log was altered (see tagbox audit verify)`, 'audit_broken');
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
