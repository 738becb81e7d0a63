import type BetterSqlite3 from 'better-sqlite3';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import type { TagboxConfig } from '../config/schema.js';
import { describeError, failure, isTagboxError, TagboxError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ControlStore } from '../store/database.js';
import type { Database } from '../store/tables.js';
import { checkpointSignatureProblem, fromRow, toRow, type Checkpoint, type CheckpointRow, type TrustedKeys } from './checkpoint.js';
import { decideCheckpoint, sameCheckpoint, seqsToRead, type CheckpointDecision, type CheckpointState, type Point } from './checkpoint-decision.js';
import { readCheckpointFile, writeCheckpointFile } from './checkpoint-file.js';
import { withAuditWriteLock } from './write-lock.js';
import { loadSigningKey, type SigningKey } from './signing-key.js';

/**
 * When the audit log gets signed checkpoints, in a process that appends to it.
 * After each append (one per group-commit batch in the proxy) the head is
 * signed — at most once per `minIntervalMs` (1 s): the first batch after a
 * quiet spell at once, later ones when the interval is up. Closing the store
 * signs what is left, so a finished `tagbox exec` leaves its tail covered; the
 * server's housekeeping also checkpoints periodically, covering events of
 * processes that could not read the key. Each checkpoint is one short
 * transaction under the audit write lock, off the request path.
 *
 * A process that cannot load the key still appends (the chain stays valid),
 * says so once in its log, and signs nothing; verify counts the events no
 * checkpoint covers. The newest checkpoint is also written to a file outside
 * the database (checkpoint-file.ts).
 */
export interface AuditCheckpointOptions {
  /** The key file, used unless TAGBOX_AUDIT_SIGNING_KEY is set; created (0600) on first need. */
  keyFile: string;
  /** Where the newest checkpoint is kept outside the database. */
  checkpointFile: string;
  minIntervalMs?: number;
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
}

/** The defaults of a TAGBOX_HOME, with tagbox.yaml's `audit` settings. */
export function auditCheckpointOptions(home: string, config?: Pick<TagboxConfig, 'audit'>, logger?: Logger): AuditCheckpointOptions {
  return {
    keyFile: config?.audit.signingKeyFile ?? join(home, 'audit-signing.key'),
    checkpointFile: config?.audit.checkpointFile ?? join(home, 'audit', 'checkpoint.json'),
    ...(logger ? { logger } : {}),
  };
}

export type CheckpointOutcome =
  | { state: 'made'; checkpoint: Checkpoint }
  | { state: 'covered'; latest?: Checkpoint }
  | { state: 'refused'; problem: string }
  | { state: 'unavailable'; problem: string };

const attached = new WeakMap<ControlStore, AuditCheckpoints>();

/**
 * From now on, appends through `store` (any AuditLog on it) are checkpointed,
 * and `store.close()` first signs what is left. The CLI does this for every
 * store it opens (cli/context.ts); returns the store's checkpointer.
 */
export function enableAuditCheckpoints(store: ControlStore, options: AuditCheckpointOptions): AuditCheckpoints {
  const existing = attached.get(store);
  if (existing) return existing;
  const checkpoints = new AuditCheckpoints(store, options);
  attached.set(store, checkpoints);
  const close = store.close;
  store.close = async () => {
    await checkpoints.close();
    await close();
  };
  return checkpoints;
}

export function auditCheckpointsOf(store: ControlStore): AuditCheckpoints | undefined {
  return attached.get(store);
}

export class AuditCheckpoints {
  readonly keyFile: string;
  readonly checkpointFile: string;
  private readonly minIntervalMs: number;
  private key: SigningKey | null | undefined;
  private keyProblem = '';
  private keyExitCode: 1 | 2 = 1;
  /** The newest checkpoint this process made or saw verified: a deleted one cannot fool it. */
  private known: Checkpoint | undefined;
  private lastAt = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  private pending = false;
  private chain: Promise<unknown> = Promise.resolve();
  /** When each kind of trouble was last logged: once, then a reminder every 10 minutes at most. */
  private readonly said = new Map<string, number>();

  constructor(
    private readonly store: ControlStore,
    private readonly options: AuditCheckpointOptions,
  ) {
    this.keyFile = options.keyFile;
    this.checkpointFile = options.checkpointFile;
    this.minIntervalMs = options.minIntervalMs ?? 1000;
  }

  /**
   * Called after every append (some ns; see bench/audit.ts): schedules a checkpoint,
   * never runs one inline — an append inside a caller's transaction must not
   * wait for a lock its own transaction holds.
   */
  noteAppended(): void {
    if (this.pending || this.key === null) return;
    this.pending = true;
    const wait = Math.max(0, this.lastAt + this.minIntervalMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.checkpoint();
    }, wait);
    this.timer.unref();
  }

  /**
   * Signs the head now unless it is covered already; serialised within the
   * process. `strict` (a verb that needs the checkpoint): a refusal or a
   * missing key throws, the message starting with `strict`, instead of being logged.
   */
  checkpoint(options: { strict?: string } = {}): Promise<CheckpointOutcome> {
    const run = this.chain.then(() => this.checkpointNow(options.strict));
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** The loaded signing key, or a failure naming why there is none (for prune and `tagbox audit checkpoint`). */
  signingKey(): SigningKey {
    const key = this.loadKey();
    if (!key) throw new TagboxError(`audit signing key unavailable: ${this.keyProblem}`, { exitCode: this.keyExitCode, code: 'audit_key_unavailable' });
    return key;
  }

  /** The public key verify trusts by default: this key's, if it exists (never created here). */
  trustedKeys(): TrustedKeys | undefined {
    if (this.key) return this.key.trusted();
    try {
      return loadSigningKey({ file: this.keyFile, create: false, env: this.options.env }).key.trusted();
    } catch {
      return undefined;
    }
  }

  /** Signs what is left (if this process appended since its last checkpoint). */
  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending) await this.checkpoint();
    await this.chain;
  }

  private async checkpointNow(strict: string | undefined): Promise<CheckpointOutcome> {
    // Whatever was scheduled is covered by this one.
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = false;
    this.lastAt = Date.now();
    let outcome: CheckpointOutcome;
    try {
      outcome = await this.attempt();
    } catch (error) {
      outcome = { state: 'refused', problem: `checkpoint failed: ${describeError(error)}` };
    }
    if (strict !== undefined && outcome.state === 'refused') throw failure(`${strict}: ${outcome.problem}`, 'audit_broken');
    // A bad key is bad input (exit 2), a missing or unreadable one a failure.
    if (strict !== undefined && outcome.state === 'unavailable') {
      throw new TagboxError(`${strict}: no audit signing key: ${outcome.problem}`, { exitCode: this.keyExitCode, code: 'audit_key_unavailable' });
    }
    if (outcome.state === 'refused') this.sayOnce('error', 'refused', `audit checkpoint refused: ${outcome.problem}`);
    return outcome;
  }

  private async attempt(): Promise<CheckpointOutcome> {
    const key = this.loadKey();
    if (!key) return { state: 'unavailable', problem: this.keyProblem };
    const fromFile = this.knownFromFile(key);
    if (typeof fromFile === 'string') return { state: 'refused', problem: fromFile };
    const known = newer(this.known, fromFile);
    const raw = this.store.sqlite;
    const result = raw && !raw.inTransaction ? this.lockedSqlite(raw, key, known) : await this.lockedKysely(key, known);
    if (result.state === 'made') {
      this.known = result.checkpoint;
      await this.writeFile(result.checkpoint);
    } else if (result.state === 'covered' && result.latest) {
      this.known = newer(this.known, result.latest);
      // The file lagged (another process, or a crash before it was written): bring it up to the checked newest.
      if (result.latest.kind === 'head') await this.writeFile(result.latest);
    }
    return result;
  }

  private async writeFile(checkpoint: Checkpoint): Promise<void> {
    try {
      await writeCheckpointFile(this.checkpointFile, checkpoint);
    } catch (error) {
      this.sayOnce('warn', 'file', `cannot write the external audit checkpoint ${this.checkpointFile}: ${describeError(error)}`);
    }
  }

  /** The external file's checkpoint, checked; a string when it is unusable (then nothing is signed). */
  private knownFromFile(key: SigningKey): Checkpoint | undefined | string {
    const file = readCheckpointFile(this.checkpointFile);
    if (file.state === 'missing') return undefined;
    if (file.state === 'invalid') return `the external checkpoint ${this.checkpointFile} is unusable (${file.problem}); remove it only if you know why it is wrong`;
    // Usually the one this process wrote: no need to check its signature again.
    if (this.known && sameCheckpoint(file.checkpoint, this.known)) return file.checkpoint;
    const bad = checkpointSignatureProblem(file.checkpoint, key.trusted());
    if (bad) return `the external checkpoint ${this.checkpointFile} ${bad}`;
    return file.checkpoint;
  }

  /** SQLite: one synchronous IMMEDIATE transaction, so the write lock is never held across an await. */
  private lockedSqlite(raw: BetterSqlite3.Database, key: SigningKey, known: Checkpoint | undefined): CheckpointOutcome {
    const step = raw.transaction(() => {
      const latestRow = raw.prepare('select seq, kind, hash, ts, key_id, signature from audit_checkpoints order by seq desc, kind desc limit 1').get() as CheckpointRow | undefined;
      const latest = latestRow ? fromRow(latestRow) : undefined;
      const hashes = new Map<number, string>();
      const byseq = raw.prepare('select hash from audit_events where seq = ?');
      for (const seq of seqsToRead(latest, known)) {
        const row = byseq.get(seq) as { hash: string } | undefined;
        if (row) hashes.set(seq, row.hash);
      }
      const head = raw.prepare('select seq, hash from audit_events order by seq desc limit 1').get() as Point | undefined;
      const anchor = raw.prepare('select seq, hash from audit_anchor limit 1').get() as Point | undefined;
      const state = chainState(head, anchor, latest, hashes);
      const decision = decideCheckpoint(state, known, key.trusted(), key.keyId);
      const insert = raw.prepare('insert into audit_checkpoints (seq, kind, hash, ts, key_id, signature) values (@seq, @kind, @hash, @ts, @key_id, @signature)');
      return this.apply(decision, key, (cp) => insert.run(toRow(cp)));
    });
    return step.immediate();
  }

  private lockedKysely(key: SigningKey, known: Checkpoint | undefined): Promise<CheckpointOutcome> {
    return withAuditWriteLock(this.store, async (trx: Kysely<Database>) => {
      const latestRow = await trx.selectFrom('audit_checkpoints').selectAll().orderBy('seq', 'desc').orderBy('kind', 'desc').limit(1).executeTakeFirst();
      const latest = latestRow ? fromRow(latestRow) : undefined;
      const seqs = seqsToRead(latest, known);
      const rows = seqs.length ? await trx.selectFrom('audit_events').select(['seq', 'hash']).where('seq', 'in', seqs).execute() : [];
      const head = await trx.selectFrom('audit_events').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirst();
      const anchor = await trx.selectFrom('audit_anchor').select(['seq', 'hash']).executeTakeFirst();
      const state = chainState(head, anchor, latest, new Map(rows.map((r) => [Number(r.seq), r.hash])));
      const made: Checkpoint[] = [];
      const outcome = this.apply(decideCheckpoint(state, known, key.trusted(), key.keyId), key, (cp) => made.push(cp));
      for (const cp of made) await trx.insertInto('audit_checkpoints').values(toRow(cp)).execute();
      return outcome;
    });
  }

  private apply(decision: CheckpointDecision, key: SigningKey, insert: (cp: Checkpoint) => void): CheckpointOutcome {
    if (decision.action === 'refuse') return { state: 'refused', problem: decision.problem };
    if (decision.action === 'none') return { state: 'covered', ...(decision.latest ? { latest: decision.latest } : {}) };
    const ts = new Date().toISOString();
    if (decision.adoptAnchor) insert(key.sign({ kind: 'anchor', seq: decision.adoptAnchor.seq, hash: decision.adoptAnchor.hash, ts }));
    const checkpoint = key.sign({ kind: 'head', seq: decision.head.seq, hash: decision.head.hash, ts });
    insert(checkpoint);
    return { state: 'made', checkpoint };
  }

  private loadKey(): SigningKey | null {
    if (this.key !== undefined) return this.key;
    try {
      const loaded = loadSigningKey({ file: this.keyFile, create: true, env: this.options.env });
      if (loaded.warning) this.sayOnce('warn', 'key-mode', loaded.warning);
      if (loaded.created) this.options.logger?.debug({ file: this.keyFile }, 'created the audit signing key');
      this.key = loaded.key;
    } catch (error) {
      this.key = null;
      this.keyProblem = describeError(error);
      if (isTagboxError(error)) this.keyExitCode = error.exitCode;
      this.sayOnce(
        'warn',
        'key',
        `audit checkpoints are off in this process: ${this.keyProblem}. Events are still appended and hash-chained; \`tagbox audit verify\` counts those no signed checkpoint covers`,
      );
    }
    return this.key;
  }

  private sayOnce(level: 'warn' | 'error', kind: string, message: string): void {
    const last = this.said.get(kind);
    if (last !== undefined && Date.now() - last < 600_000) return;
    this.said.set(kind, Date.now());
    this.options.logger?.[level](message);
  }
}

function chainState(head: Point | undefined, anchor: Point | undefined, latest: Checkpoint | undefined, hashes: Map<number, string>): CheckpointState {
  const top = head ?? anchor;
  return { ...(top ? { head: { seq: Number(top.seq), hash: top.hash } } : {}), ...(anchor ? { anchor: { seq: Number(anchor.seq), hash: anchor.hash } } : {}), ...(latest ? { latest } : {}), hashes };
}

function newer(a: Checkpoint | undefined, b: Checkpoint | undefined): Checkpoint | undefined {
  if (!a) return b;
  if (!b) return a;
  return b.seq > a.seq ? b : a;
}
