import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { Place } from '../access/effective-policy.js';
import type { AuditLog } from '../audit/log.js';
import type { Logger } from '../log.js';
import { SandboxManager } from '../sandbox/manager.js';
import type { SandboxLimits } from '../sandbox/limits.js';
import type { ExecHandle, ExecRequest, SandboxProvider } from '../sandbox/types.js';
import type { ControlStore } from '../store/database.js';
import type { Engine } from '../engines/engine.js';
import { loadEngineState, saveEngineState } from './engine-state.js';
import type { Session } from './model.js';
import type { BlockedFacts } from './notices.js';
import { releaseSandboxSlot } from './sandbox-slots.js';
import { TurnMemory, type SandboxMemory } from './turn-memory.js';
import { copyThreadFilesIn, type ThreadFile } from './thread-files.js';
import { COMMIT_MSG_HOOK, GIT_HOOKS_INSIDE } from './turn-credit.js';
import type { GithubEvent } from '../proxy/github-event.js';

/**
 * The Agent Proxy as the session layer needs it: one listener per session
 * whose policy follows the place live (channel: its bundles; DM: the member's
 * connectors). Under `tagbox up` this is the proxy child's control socket.
 */
export interface ProxyListeners {
  openListener(session: string, socketPath: string, place: Place): Promise<void>;
  closeListener(session: string): Promise<boolean>;
  caCert(): Promise<string>;
  /** The proxy process's id: when it changes, the proxy restarted and its listeners are gone. */
  ping(): Promise<number | undefined>;
  /** The proxy's feed of requests it blocked for sessions (for the threads' notices). */
  subscribeFeed?(
    onEvent: (event: { session: string; host: string; port: number; reason: string; budget?: BlockedFacts['budget'] }) => void,
    /** And its feed of what sessions did on GitHub (pushes that landed, pull requests opened). */
    onGithub?: (event: GithubEvent) => void,
  ): { close(): void };
}

export interface SessionSandboxesOptions {
  provider: SandboxProvider;
  proxy: ProxyListeners;
  store: ControlStore;
  audit: AuditLog;
  instanceId: string;
  idleMs: number;
  limits?: Partial<SandboxLimits>;
  logger: Logger;
  /** The plugins of a session's place, extracted on the host (mounted read-only when its sandbox is built). */
  pluginsFor?: (session: Session) => Promise<Array<{ name: string; hostDir: string }>>;
  /** Files a surface received in the session's thread (Slack), copied in at each turn to `dir`. */
  filesFor?: (session: Session) => Promise<{ dir: string; files: ThreadFile[] }>;
  /** A notice for a turn's thread from here (its channel memory was cut or refused). */
  onNotice?: (sessionId: string, text: string, turnId: string | undefined) => Promise<void>;
}

/** Where a session's plugins appear in its sandbox. */
export const PLUGINS_INSIDE = '/opt/tagbox/plugins';

/** A session's sandbox, ready for a turn. */
export interface TurnSandbox {
  exec(request: ExecRequest): ExecHandle;
  /** Built for this turn (a first turn, or a rebuild after release or a crash). */
  created: boolean;
  /** The engine's state was restored into it. */
  restored: boolean;
  /** The channel's (or DM's) memory, copied in at `path` for this turn. */
  memory: SandboxMemory;
  /** The session's plugins, mounted read-only. */
  plugins?: Array<{ name: string; path: string }>;
}

/**
 * Sessions' sandboxes: built when a turn needs one, with the session's proxy
 * listener opened first (the socket is bound into the sandbox: its only way
 * out) and the engine's state restored; released after `agent.idleSeconds`
 * without a turn — listener closed, slot freed, audited — and rebuilt by the
 * next turn. The slot (the org's sandbox cap) is taken by the turn runner.
 */
export class SessionSandboxes {
  private readonly manager: SandboxManager;
  private readonly sessions = new Map<string, Session>();
  private readonly busy = new Set<string>();
  private readonly listenerEpoch = new Map<string, number | undefined>();
  private caCert: Promise<string> | undefined;
  /** The host directory of Tagbox's git hooks (turn-credit.ts), written once. */
  private gitHooks: string | undefined;
  /** Sessions whose sandbox is being rebuilt within a turn: their slot stays taken. */
  private readonly keepSlot = new Set<string>();
  /** Releases still closing their listener and freeing their slot. */
  private readonly releasing = new Set<Promise<void>>();
  /** What each session's sandbox was (or is being) built with: the engine's mounts and the plugins. */
  private readonly builds = new Map<string, { engine: Engine; plugins: Array<{ name: string; hostDir: string }> }>();
  private readonly memory: TurnMemory;

  constructor(private readonly options: SessionSandboxesOptions) {
    this.memory = new TurnMemory({ store: options.store, audit: options.audit, logger: options.logger, ...(options.onNotice ? { onNotice: options.onNotice } : {}) });
    this.manager = new SandboxManager({
      provider: options.provider,
      idleMs: options.idleMs,
      spec: (key) => this.spec(key),
      onEvent: (event) => {
        if (event.kind !== 'released') return;
        const done = this.afterRelease(event.key, event.sandbox.id).finally(() => this.releasing.delete(done));
        this.releasing.add(done);
      },
    });
  }

  /** The session's sandbox for a turn (marked busy until `done`), with the latest memory copied in. */
  async forTurn(session: Session, engine: Engine, turnId?: string): Promise<TurnSandbox> {
    this.sessions.set(session.id, session);
    this.busy.add(session.id);
    let acquired;
    try {
      await this.ensureListener(session);
      if (!this.manager.has(session.id)) this.builds.set(session.id, { engine, plugins: (await this.options.pluginsFor?.(session)) ?? [] });
      acquired = await this.manager.acquire(session.id);
    } catch (error) {
      // No sandbox came of it: nothing may stay held for this session.
      await this.afterRelease(session.id, undefined);
      throw error;
    }
    const { sandbox, created } = acquired;
    let restored = false;
    if (created) {
      const state = engine.stateDir ? await loadEngineState(this.options.store.db, session.id) : undefined;
      if (state && engine.stateDir) restored = await this.restore(session.id, engine.stateDir, state.data);
      await this.options.audit.append({
        type: 'sandbox',
        action: (await this.hadSandboxBefore(session)) ? 'rebuild' : 'create',
        session: session.id,
        actor: 'system',
        sandbox: sandbox.id,
        provider: sandbox.provider,
        ...(restored ? { restoredState: true } : {}),
        ...(session.place.kind === 'channel' ? { channel: session.place.channelId } : {}),
      });
    }
    const exec = (request: ExecRequest) => this.exec(session.id, request);
    const memory = await this.memory.copyIn(session, exec, turnId);
    const shared = await this.options.filesFor?.(session);
    if (shared?.files.length) await copyThreadFilesIn(exec, shared.dir, shared.files);
    const plugins = (this.builds.get(session.id)?.plugins ?? []).map((p) => ({ name: p.name, path: `${PLUGINS_INSIDE}/${p.name}` }));
    return { exec, created, restored, memory, plugins };
  }

  /** The turn is over: the engine's state and the memory are copied out, and the idle clock runs. */
  async done(session: Session, engine: Engine): Promise<void> {
    // The two copies are independent: side by side (each is an exec in the sandbox).
    const state = async () => {
      try {
        if (!engine.stateDir || !this.manager.has(session.id)) return;
        const data = await this.collect(session.id, ['sh', '-c', `cd ${shellQuote(engine.stateDir)} 2>/dev/null && tar -czf - . 2>/dev/null || true`]);
        if (data.length) await saveEngineState(this.options.store.db, session.id, engine.name, data);
      } catch (error) {
        this.options.logger.warn({ err: error, session: session.id }, 'could not copy the engine state out of the sandbox');
      }
    };
    const memory = async () => {
      if (this.manager.has(session.id)) await this.memory.copyOut(session, (request) => this.exec(session.id, request));
    };
    try {
      await Promise.all([state(), memory()]);
    } finally {
      this.busy.delete(session.id);
    }
  }


  /** Releases the least recently used idle sandbox of the org held here; false when there is none. */
  async evictIdle(orgId: string): Promise<boolean> {
    const idle = [...this.sessions.values()]
      .filter((s) => s.orgId === orgId && !this.busy.has(s.id) && this.manager.has(s.id))
      .sort((a, b) => a.lastActivityAt.localeCompare(b.lastActivityAt));
    if (!idle[0]) return false;
    await this.release(idle[0].id);
    return true;
  }

  async release(sessionId: string): Promise<void> {
    if (!this.manager.has(sessionId)) {
      await this.afterRelease(sessionId, undefined);
      return;
    }
    await this.manager.release(sessionId);
    await Promise.all([...this.releasing]);
  }

  async releaseAll(): Promise<void> {
    await this.manager.releaseAll();
    await Promise.all([...this.releasing]);
  }

  get liveCount(): number {
    return [...this.sessions.keys()].filter((id) => this.manager.has(id)).length;
  }

  private exec(sessionId: string, request: ExecRequest): ExecHandle {
    // The manager resolves the sandbox first; the handle is ours at once.
    return deferredHandle(this.manager.exec(sessionId, request));
  }

  private async spec(sessionId: string) {
    // Kept once known; a failed fetch is not (the next build asks again).
    this.caCert ??= this.options.proxy.caCert().catch((error: unknown) => {
      this.caCert = undefined;
      throw error;
    });
    const build = this.builds.get(sessionId);
    this.gitHooks ??= writeGitHooks(this.options.provider);
    const mounts = [
      ...(build?.engine.mounts ?? []),
      ...(build?.plugins ?? []).map((p) => ({ source: p.hostDir, target: `${PLUGINS_INSIDE}/${p.name}` })),
      { source: this.gitHooks, target: GIT_HOOKS_INSIDE },
    ];
    return {
      proxySocket: this.socketPath(sessionId),
      caCertPem: await this.caCert,
      label: `session ${sessionId}`,
      ...(mounts.length ? { mounts } : {}),
      ...(this.options.limits ? { limits: this.options.limits } : {}),
    };
  }

  private socketPath(sessionId: string): string {
    return this.options.provider.proxySocketPath(`s-${sessionId}`);
  }

  /**
   * Opens the session's listener, or re-opens it after the proxy restarted.
   * A live sandbox bound the old socket (a bind mount holds the file, not its
   * path), so it is rebuilt too — its slot kept, its engine state restored.
   */
  private async ensureListener(session: Session): Promise<void> {
    const pid = await this.options.proxy.ping();
    if (pid === undefined) throw new Error('the Agent Proxy is not reachable, so the sandbox would have no way out');
    if (this.listenerEpoch.has(session.id) && this.listenerEpoch.get(session.id) === pid) return;
    if (this.listenerEpoch.has(session.id) && this.manager.has(session.id)) {
      this.keepSlot.add(session.id);
      try {
        await this.release(session.id);
      } finally {
        this.keepSlot.delete(session.id);
      }
      this.sessions.set(session.id, session);
      this.busy.add(session.id);
    }
    await this.options.proxy.closeListener(session.id).catch(() => false);
    await this.options.proxy.openListener(session.id, this.socketPath(session.id), session.place);
    this.listenerEpoch.set(session.id, pid);
  }

  private async closeListener(sessionId: string): Promise<void> {
    this.listenerEpoch.delete(sessionId);
    await this.options.proxy.closeListener(sessionId).catch((error: unknown) => this.options.logger.warn({ err: error, session: sessionId }, 'could not close a session listener'));
  }

  private async afterRelease(sessionId: string, sandboxId: string | undefined): Promise<void> {
    this.sessions.delete(sessionId);
    if (!this.keepSlot.has(sessionId)) this.builds.delete(sessionId);
    this.busy.delete(sessionId);
    await this.closeListener(sessionId);
    try {
      const rebuilding = this.keepSlot.has(sessionId);
      if (!rebuilding) await releaseSandboxSlot(this.options.store.db, sessionId, this.options.instanceId);
      if (sandboxId) await this.options.audit.append({ type: 'sandbox', action: 'release', session: sessionId, actor: 'system', sandbox: sandboxId, ...(rebuilding ? { reason: 'proxy-restarted' } : {}) });
    } catch (error) {
      this.options.logger.warn({ err: error, session: sessionId }, 'could not record a sandbox release');
    }
  }

  private async hadSandboxBefore(session: Session): Promise<boolean> {
    const row = await this.options.store.db
      .selectFrom('audit_events')
      .select('seq')
      .where('session_id', '=', session.id)
      .where('type', '=', 'sandbox')
      .limit(1)
      .executeTakeFirst();
    return row !== undefined;
  }

  private async restore(sessionId: string, dir: string, data: Buffer): Promise<boolean> {
    const handle = this.manager.exec(sessionId, { argv: ['sh', '-c', `mkdir -p ${shellQuote(dir)} && tar -xzf - -C ${shellQuote(dir)}`], stdin: data });
    const h = await handle;
    h.stdout.resume();
    h.stderr.resume();
    const result = await h.result;
    if (result.exitCode !== 0) this.options.logger.warn({ session: sessionId, exitCode: result.exitCode }, 'the engine state could not be restored');
    return result.exitCode === 0;
  }

  private async collect(sessionId: string, argv: string[]): Promise<Buffer> {
    const h = await this.manager.exec(sessionId, { argv });
    const chunks: Buffer[] = [];
    let size = 0;
    h.stdout.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_ENGINE_STATE_BYTES) chunks.push(c);
    });
    h.stderr.resume();
    await h.result;
    if (size > MAX_ENGINE_STATE_BYTES) throw new Error(`the engine state is ${size} bytes, over the ${MAX_ENGINE_STATE_BYTES} limit; not saved`);
    return Buffer.concat(chunks);
  }
}

export const MAX_ENGINE_STATE_BYTES = 32 * 1024 * 1024;

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** An ExecHandle now for one that resolves later (the sandbox may still be building). */
function deferredHandle(pending: Promise<ExecHandle>): ExecHandle {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const result = pending.then((handle) => {
    handle.stdout.pipe(stdout);
    handle.stderr.pipe(stderr);
    return handle.result;
  });
  result.catch((error: unknown) => {
    stdout.destroy(error as Error);
    stderr.destroy(error as Error);
  });
  return { stdout, stderr, result };
}

/** Tagbox's git hooks, on the host where the provider can mount them (read-only, in every sandbox). */
function writeGitHooks(provider: SandboxProvider): string {
  const dir = provider.mountSourceDir('git-hooks');
  const file = join(dir, 'commit-msg');
  let current: string | undefined;
  try {
    current = readFileSync(file, 'utf8');
  } catch {
    current = undefined;
  }
  if (current !== COMMIT_MSG_HOOK) writeFileSync(file, COMMIT_MSG_HOOK, { mode: 0o755 });
  chmodSync(file, 0o755);
  return dir;
}
