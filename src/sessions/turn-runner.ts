import { getChannel } from '../access/workspaces-repo.js';
import type { AuditLog } from '../audit/log.js';
import { describeError } from '../errors.js';
import type { EngineRegistry } from '../engines/engine.js';
import type { Logger } from '../log.js';
import type { ControlStore } from '../store/database.js';
import { goneInstances, heartbeat, HEARTBEAT_MS, markStopped, pruneInstances, type Instance } from './instances.js';
import { turnMessages } from './messages-repo.js';
import { placeAuditFields, type Author, type Session, type Turn, type TurnStatus } from './model.js';
import type { GithubEvent } from '../proxy/github-event.js';
import { creditEnvironment, turnCredit } from './turn-credit.js';
import { recordTurnOutput, turnOutputs } from './turn-outputs-repo.js';
import { blockedNotice, noticeKey, pullRequestNotice, pushNotice, type BlockedFacts } from './notices.js';
import { capHead, neutralise, ProgressLimiter } from '../util/output-limits.js';
import { freeSlotsOf, releaseSandboxSlot, takeSandboxSlot } from './sandbox-slots.js';
import type { SessionSandboxes } from './session-sandboxes.js';
import { turnSetting } from './turn-setting.js';
import { withWriteTransaction } from '../store/write-transaction.js';
import type { SessionService } from './session-service.js';
import { getSession } from './sessions-repo.js';
import { absorbQueuedTurn, cancelRequests, claimTurn, finishTurn, queuedAhead, queuedTurns, runningTurnsHeldBy } from './turns-repo.js';

export interface TurnRunnerOptions {
  store: ControlStore;
  audit: AuditLog;
  service: SessionService;
  sandboxes: SessionSandboxes;
  engines: EngineRegistry;
  instance: Instance;
  logger: Logger;
  turnTimeoutMs: number;
  maxSandboxesPerOrg: number;
  maxReplyBytes: number;
  progressBytesPerSecond: number;
  /** How often to look for work queued by other processes, cancel requests and dead instances. */
  pollMs?: number;
}

interface Running {
  turn: Turn;
  session: Session;
  abort: AbortController;
  /** Why it was aborted: who cancelled it, the time limit, or shutdown. */
  stop?: { kind: 'cancel'; by: string } | { kind: 'timeout' } | { kind: 'shutdown' };
  notices: Set<string>;
  done: Promise<void>;
}

/**
 * Runs queued turns, one at a time per session, in any process: a turn is
 * claimed in the store (the one-running-turn index decides races), its
 * sandbox slot is taken against the org's cap (the rest wait and their
 * threads say "queued: N ahead"), the engine runs in the session's sandbox,
 * its output is neutralised, capped and rate-limited into the thread, and
 * the turn ends exactly once — done, cancelled, failed, or interrupted
 * (by a shutdown here, or found held by a dead process on recovery).
 */
export class TurnRunner {
  private readonly running = new Map<string, Running>();
  private readonly queuedSaid = new Map<string, number>();
  /** Turns that just ended: the proxy's feed is asynchronous, so a late blocked decision still counts for its turn. */
  private readonly recent = new Map<string, { entry: Running; until: number }>();
  private timers: NodeJS.Timeout[] = [];
  private pumping = false;
  private again = false;
  private stopping = false;

  constructor(private readonly options: TurnRunnerOptions) {}

  start(): void {
    const poll = this.options.pollMs ?? 1000;
    const every = (ms: number, fn: () => Promise<unknown>) => {
      const t = setInterval(() => void fn().catch((error: unknown) => this.options.logger.warn({ err: error }, 'turn runner: background pass failed')), ms);
      t.unref();
      this.timers.push(t);
    };
    every(HEARTBEAT_MS, () => heartbeat(this.options.store.db, this.options.instance.id));
    every(poll, async () => {
      await this.pollCancels();
      this.kick();
    });
    every(Math.max(poll, 2000), () => this.recover());
    void this.recover().then(() => this.kick(), (error: unknown) => this.options.logger.error({ err: error }, 'turn runner: recovery failed'));
  }

  /** Look for work now (coalesced). */
  kick(): void {
    if (this.stopping) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    void this.pump()
      .catch((error: unknown) => this.options.logger.error({ err: error }, 'turn runner: pump failed'))
      .finally(() => {
        this.pumping = false;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  /** Aborts the running turn here at once (the request is in the store too, for other processes). */
  cancelLocal(turnId: string, by: string): void {
    for (const r of this.running.values()) if (r.turn.id === turnId) this.abort(r, { kind: 'cancel', by });
  }

  /** A blocked decision of one of this process's sessions: one notice per host (or spent budget) per turn. */
  async blocked(sessionId: string, facts: BlockedFacts): Promise<void> {
    const late = this.recent.get(sessionId);
    const r = this.running.get(sessionId) ?? (late && late.until > Date.now() ? late.entry : undefined);
    if (!r) return;
    const key = noticeKey(facts);
    if (r.notices.has(key)) return;
    r.notices.add(key);
    const channelName = r.session.place.kind === 'channel' ? (await getChannel(this.options.store.db, r.session.place.channelId))?.name : undefined;
    const text = blockedNotice(facts, r.session.place.kind === 'channel' ? { kind: 'channel', channelName } : { kind: 'dm' });
    const host = neutralise(facts.host).slice(0, 255);
    const data = facts.budget ? { kind: 'budget', scope: facts.budget.scope, period: facts.budget.period, host, text } : { kind: 'blocked', host, port: facts.port, text };
    await this.options.service.emit(sessionId, 'notice', data, r.turn.id);
  }

  /**
   * A push that landed or a pull request opened by one of this process's
   * sessions (the proxy saw GitHub accept it): recorded as what the turn
   * left, attributed in the audit (the turn links it to its invocation),
   * and told in the thread — once each.
   */
  async github(event: GithubEvent): Promise<void> {
    const late = this.recent.get(event.session);
    const r = this.running.get(event.session) ?? (late && late.until > Date.now() ? late.entry : undefined);
    if (!r) return;
    const { store, audit, service } = this.options;
    const { turn, session } = r;
    const base = { type: 'github' as const, outcome: 'ok', actor: turn.triggeredBy ?? 'system', session: session.id, thread: session.id, turn: turn.id, ...placeAuditFields(session.place), repository: event.repository };
    if (event.kind === 'pull-request') {
      const pr = { kind: 'pull-request' as const, repository: event.repository, number: event.number, url: event.url, ...(event.title ? { title: event.title } : {}) };
      if (!(await recordTurnOutput(store.db, session.id, turn.id, pr))) return;
      await audit.append({ ...base, action: 'pull-request', number: event.number, url: event.url, ...(event.head ? { head: event.head } : {}), ...(event.base ? { base: event.base } : {}) });
      await service.emit(session.id, 'notice', { kind: 'pull-request', repository: event.repository, number: event.number, url: event.url, text: pullRequestNotice(pr) }, turn.id);
      return;
    }
    const fresh: string[] = [];
    for (const ref of event.refs) if (ref.ok && (await recordTurnOutput(store.db, session.id, turn.id, { kind: 'branch', repository: event.repository, ref: ref.ref }))) fresh.push(ref.ref);
    await audit.append({ ...base, action: 'push', refs: event.refs.map((x) => ({ ref: x.ref, action: x.action, oldOid: x.oldOid, newOid: x.newOid })) });
    if (fresh.length) await service.emit(session.id, 'notice', { kind: 'push', repository: event.repository, refs: fresh, text: pushNotice(event.repository, fresh) }, turn.id);
  }

  /** Stops: running turns are interrupted (and say so), sandboxes released, the instance marked gone. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of this.timers) clearInterval(t);
    for (const r of this.running.values()) this.abort(r, { kind: 'shutdown' });
    await Promise.race([Promise.allSettled([...this.running.values()].map((r) => r.done)), new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
    await this.options.sandboxes.releaseAll();
    await markStopped(this.options.store.db, this.options.instance.id).catch(() => undefined);
  }

  get activeTurns(): number {
    return this.running.size;
  }

  private async pump(): Promise<void> {
    const { store, instance } = this.options;
    const seen = new Set<string>();
    for (const turn of await queuedTurns(store.db)) {
      if (this.stopping) return;
      // The oldest queued turn of each session is its next; one running at a time.
      if (seen.has(turn.sessionId)) continue;
      seen.add(turn.sessionId);
      if (this.running.has(turn.sessionId)) continue;
      let slot = await takeSandboxSlot(store, turn.orgId, turn.sessionId, instance.id, this.options.maxSandboxesPerOrg);
      if (slot === 'full' && (await this.options.sandboxes.evictIdle(turn.orgId))) {
        slot = await takeSandboxSlot(store, turn.orgId, turn.sessionId, instance.id, this.options.maxSandboxesPerOrg);
      }
      if (slot === 'elsewhere') continue;
      if (slot === 'full') {
        await this.sayQueued(turn);
        continue;
      }
      if (!(await claimTurn(store.db, turn.id, instance.id))) {
        if (slot === 'taken') await releaseSandboxSlot(store.db, turn.sessionId, instance.id);
        continue;
      }
      this.queuedSaid.delete(turn.id);
      await this.launch(turn);
    }
  }

  private async launch(turn: Turn): Promise<void> {
    const session = (await getSession(this.options.store.db, turn.sessionId))!;
    const entry: Running = { turn, session, abort: new AbortController(), notices: new Set(), done: Promise.resolve() };
    this.running.set(session.id, entry);
    entry.done = this.run(entry)
      .catch((error: unknown) => this.options.logger.error({ err: error, turn: turn.id }, 'turn failed unexpectedly'))
      .finally(() => {
        this.running.delete(session.id);
        const until = Date.now() + LATE_FEED_MS;
        this.recent.set(session.id, { entry, until });
        setTimeout(() => this.recent.get(session.id)?.until === until && this.recent.delete(session.id), LATE_FEED_MS).unref();
        this.kick();
      });
  }

  private async run(r: Running): Promise<void> {
    const { service, sandboxes, engines, audit } = this.options;
    const { turn, session } = r;
    const timer = setTimeout(() => this.abort(r, { kind: 'timeout' }), this.options.turnTimeoutMs);
    timer.unref();
    let status: TurnStatus = 'done';
    let exitCode: number | undefined;
    let detail: string | undefined;
    const engine = engines.get(session.engine);
    await audit.append({ type: 'session', action: 'turn-start', outcome: 'ok', session: session.id, turn: turn.id, actor: turn.triggeredBy ?? 'system', trigger: turn.trigger, identity: session.identity, engine: session.engine });
    await service.emit(session.id, 'status', { state: 'running', turn: turn.id }, turn.id);
    const progress = new ProgressStream(this.options.progressBytesPerSecond, (text) => service.emit(session.id, 'progress', { text }, turn.id));
    try {
      if (!engine) throw new Error(`this thread's engine "${session.engine}" is not installed on this server (installed: ${engines.names().join(', ')})`);
      const sandbox = await sandboxes.forTurn(session, engine, turn.id);
      try {
        const messages = (await turnMessages(this.options.store.db, turn.id)).map((m) => ({ text: m.text, author: m.author, ...(m.context ? { context: true } : {}) }));
        const credit = await turnCredit(this.options.store.db, session, turn);
        const setting = { ...(await turnSetting(this.options.store.db, session, sandbox)), ...(credit ? { credit } : {}) };
        // Every command of the turn knows whom its work is credited to (turn-credit.ts).
        const env = creditEnvironment(credit, session.id);
        for await (const event of engine.runTurn({
          sessionId: session.id,
          messages,
          setting,
          exec: (request) => sandbox.exec({ ...request, env: { ...env, ...request.env } }),
          signal: r.abort.signal,
          restored: sandbox.restored,
          takeArrivals: () => this.takeArrivals(r),
        })) {
          if (event.type === 'progress') progress.push(event.text);
          else if (event.type === 'message') {
            await progress.flush();
            await service.post(session.id, { kind: 'agent' }, capHead(neutralise(event.text), this.options.maxReplyBytes), turn.id);
          } else if (event.type === 'usage') await service.emit(session.id, 'usage', event.data, turn.id);
          else if (event.type === 'error') await service.emit(session.id, 'error', { message: capHead(neutralise(event.message), 4096) }, turn.id);
          else exitCode = event.exitCode;
        }
      } finally {
        await progress.flush();
        await sandboxes.done(session, engine);
      }
    } catch (error) {
      if (!r.stop) {
        status = 'failed';
        detail = describeError(error);
        await service.post(session.id, { kind: 'system' }, `The turn failed: ${capHead(neutralise(detail), 2000)}`, turn.id).catch(() => undefined);
      }
    } finally {
      clearTimeout(timer);
    }
    if (r.stop) {
      const said = await this.stoppedText(r);
      status = r.stop.kind === 'cancel' ? 'cancelled' : r.stop.kind === 'timeout' ? 'failed' : 'interrupted';
      detail = r.stop.kind;
      await service.post(session.id, { kind: 'system' }, said, turn.id).catch(() => undefined);
    }
    // Exactly once: a turn recovered as interrupted meanwhile (this process was thought dead) stays so.
    if (!(await finishTurn(this.options.store.db, turn.id, this.options.instance.id, status, detail))) return;
    // Audited before `done`: whoever sees the turn end finds its record.
    await audit.append({ type: 'session', action: 'turn-end', outcome: status, session: session.id, turn: turn.id, actor: turn.triggeredBy ?? 'system', ...(exitCode !== undefined ? { exitCode } : {}), ...(detail ? { detail: detail.slice(0, 500) } : {}) });
    // What the turn left outside the sandbox, as far as the proxy has told by now (the thread's API has the rest).
    const left = await turnOutputs(this.options.store.db, session.id, turn.id).catch(() => []);
    await service.emit(session.id, 'done', { turn: turn.id, status, ...(exitCode !== undefined ? { exitCode } : {}), ...(left.length ? { left: left.map(({ turn: _t, at: _a, ...o }) => o) } : {}) }, turn.id);
  }

  /** Messages queued for the session while its turn runs, moved into it (the engine asked). */
  private async takeArrivals(r: Running): Promise<Array<{ text: string; author: Author }>> {
    const { store, service } = this.options;
    const joined = await withWriteTransaction(store, undefined, (db) => absorbQueuedTurn(db, r.session.id, r.turn.id, store.dialect === 'postgres'));
    if (!joined) return [];
    this.queuedSaid.delete(joined.turn.id);
    // The joined turn's one `done`: its messages are answered by the running turn (clients follow `into`).
    await service.emit(r.session.id, 'done', { turn: joined.turn.id, status: 'joined', into: r.turn.id }, joined.turn.id);
    await auditJoin(this.options.audit, r, joined.turn.id);
    return joined.messages.map((m) => ({ text: m.text, author: m.author }));
  }

  private abort(r: Running, stop: NonNullable<Running['stop']>): void {
    if (r.stop) return;
    r.stop = stop;
    r.abort.abort();
  }

  private async stoppedText(r: Running): Promise<string> {
    const stop = r.stop!;
    if (stop.kind === 'timeout') return `Stopped: the turn ran longer than ${Math.round(this.options.turnTimeoutMs / 1000)} s (agent.turnTimeoutSeconds).`;
    if (stop.kind === 'shutdown') return 'This turn was interrupted: the Tagbox server is stopping. Send your message again to retry it.';
    const member = await this.options.store.db.selectFrom('members').select('display_name').where('id', '=', stop.by).executeTakeFirst();
    return `Stopped by ${member?.display_name ?? stop.by}.`;
  }

  private async sayQueued(turn: Turn): Promise<void> {
    const ahead = await queuedAhead(this.options.store.db, turn.orgId, turn);
    if (this.queuedSaid.get(turn.id) === ahead) return;
    this.queuedSaid.set(turn.id, ahead);
    await this.options.service.emit(
      turn.sessionId,
      'status',
      { state: 'queued', turn: turn.id, ahead, text: `queued: ${ahead} ahead (all ${this.options.maxSandboxesPerOrg} of the org's sandboxes are busy)` },
      turn.id,
    );
  }

  private async pollCancels(): Promise<void> {
    for (const request of await cancelRequests(this.options.store.db, this.options.instance.id)) this.cancelLocal(request.id, request.by);
  }

  /** Turns and sandboxes held by processes that are gone: the turns were interrupted, the slots are free. */
  private async recover(): Promise<void> {
    const db = this.options.store.db;
    const gone = await goneInstances(db, this.options.instance.id);
    if (gone.length === 0) return;
    for (const turn of await runningTurnsHeldBy(db, gone)) {
      if (!(await finishTurn(db, turn.id, turn.holder!, 'interrupted', 'holder-gone'))) continue;
      await this.options.service.post(
        turn.sessionId,
        { kind: 'system' },
        'This turn was interrupted: the Tagbox server running it stopped before it finished. Send your message again to retry it.',
        turn.id,
      );
      await this.options.audit.append({ type: 'session', action: 'turn-end', outcome: 'interrupted', session: turn.sessionId, turn: turn.id, actor: 'system', detail: 'the server holding it stopped' });
      await this.options.service.emit(turn.sessionId, 'done', { turn: turn.id, status: 'interrupted' }, turn.id);
    }
    await freeSlotsOf(db, gone);
    await pruneInstances(db, gone);
  }
}

const LATE_FEED_MS = 3000;

function auditJoin(log: AuditLog, r: Running, joined: string): Promise<unknown> {
  return log.append({ type: 'session', action: 'turn-join', outcome: 'ok', session: r.session.id, turn: joined, into: r.turn.id, actor: 'system' });
}


/** Progress of one turn: coalesced over a few milliseconds, then rate-limited (invariant 9). */
class ProgressStream {
  private buffer = '';
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private readonly limiter: ProgressLimiter;

  constructor(
    bytesPerSecond: number,
    private readonly send: (text: string) => Promise<void>,
  ) {
    this.limiter = new ProgressLimiter(bytesPerSecond);
  }

  push(text: string): void {
    this.buffer += neutralise(text);
    this.timer ??= setTimeout(() => void this.drain(), 25);
  }

  async flush(): Promise<void> {
    await this.drain();
    const note = this.limiter.flush();
    if (note) await this.enqueue(note);
    await this.chain;
  }

  private async drain(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.buffer) return this.chain;
    const text = this.limiter.push(this.buffer);
    this.buffer = '';
    if (text) await this.enqueue(text);
  }

  private enqueue(text: string): Promise<void> {
    this.chain = this.chain.then(() => this.send(text)).catch(() => undefined);
    return this.chain;
  }
}

