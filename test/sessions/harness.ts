import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import pino from 'pino';
import { AccessAdmin } from '../../src/access/admin-service.js';
import { createMember } from '../../src/access/members-repo.js';
import type { Member } from '../../src/access/model.js';
import { createChannel } from '../../src/access/workspaces-repo.js';
import { AuditLog } from '../../src/audit/log.js';
import { configSchema, type TagboxConfig } from '../../src/config/schema.js';
import type { Engine } from '../../src/engines/engine.js';
import { createBubblewrapProvider } from '../../src/sandbox/bubblewrap-provider.js';
import type { SandboxProvider } from '../../src/sandbox/types.js';
import { firstRun } from '../../src/server/first-run.js';
import { ProxyControl } from '../../src/server/proxy-control.js';
import { readEvents } from '../../src/sessions/event-log.js';
import type { Invocation, InvokeResult } from '../../src/sessions/invocation.js';
import type { SessionEvent } from '../../src/sessions/model.js';
import { startSessionLayer, type SessionLayer, type SessionLayerOptions } from '../../src/sessions/session-layer.js';
import { openControlStore, type ControlStore } from '../../src/store/database.js';
import { createTestBackend, type BackendName, type TestBackend } from '../helpers/backends.js';
import { REPO_ROOT, TAGBOX_BIN } from '../helpers/cli.js';

/**
 * The session layer in this process, over real parts: a real proxy daemon
 * (this process is its peer, in the server's place), real bubblewrap
 * sandboxes, a real store (SQLite or Postgres). Layers can be added on the
 * same store to play several servers (replicas).
 */
export interface SessionHarness {
  backend: TestBackend;
  store: ControlStore;
  audit: AuditLog;
  access: AccessAdmin;
  proxy: ProxyControl;
  provider: SandboxProvider;
  layer: SessionLayer;
  layers: SessionLayer[];
  orgId: string;
  workspaceId: string;
  channelId: string;
  owner: Member;
  member(name: string, options?: { hasAccount?: boolean }): Promise<Member>;
  channel(name: string, options?: { isPrivate?: boolean }): Promise<string>;
  /** Another server on the same store (its own instance, runner and sandboxes). */
  addLayer(agent?: Partial<TagboxConfig['agent']>, engines?: Engine[]): Promise<SessionLayer>;
  say(text: string, options?: Partial<Invocation> & { by?: Member }): Promise<Extract<InvokeResult, { status: 'accepted' }>>;
  events(thread: string): Promise<SessionEvent[]>;
  /** Polls the thread's event log until `done` events for `turns` turns (default 1) are in. */
  untilDone(thread: string, turns?: number, timeoutMs?: number): Promise<SessionEvent[]>;
  until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs?: number): Promise<T>;
  close(): Promise<void>;
}

export const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

export function agentConfig(overrides: Partial<TagboxConfig['agent']> = {}): TagboxConfig['agent'] {
  return { ...configSchema.parse({}).agent, ...overrides };
}

export interface HarnessOptions {
  /** More environment for the proxy daemon (e.g. TAGBOX_UPSTREAM_CONNECT_TO, TAGBOX_UPSTREAM_CA_FILE). */
  daemonEnv?: Record<string, string>;
  /** Passed to every layer (plugins of a place). */
  pluginsFor?: SessionLayerOptions['pluginsFor'];
  /** Passed to every layer (a surface's thread files). */
  filesFor?: SessionLayerOptions['filesFor'];
}

export async function startSessions(name: BackendName, agent: Partial<TagboxConfig['agent']> = {}, engines: Engine[] = [], options: HarnessOptions = {}): Promise<SessionHarness> {
  const backend = await createTestBackend(name);
  const control = join(backend.home, 'run', `control-${process.pid}.sock`);
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TAGBOX_')));
  const daemon: ChildProcess = spawn(process.execPath, [TAGBOX_BIN, 'proxy-daemon', '--control', control, '--peer-pid', String(process.pid)], {
    cwd: REPO_ROOT,
    env: {
      ...base,
      ...backend.env,
      TAGBOX_LOG_LEVEL: 'warn',
      ...(agent.modelSecret ? { TAGBOX_AGENT_MODEL_SECRET: agent.modelSecret } : {}),
      ...options.daemonEnv,
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  daemon.stderr!.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  await new Promise<void>((resolve, reject) => {
    daemon.stdout!.on('data', (c: Buffer) => c.toString('utf8').includes('ready') && resolve());
    daemon.once('exit', () => reject(new Error(`proxy-daemon exited: ${stderr}`)));
  });
  const store = await openControlStore(backend.location);
  const audit = new AuditLog(store);
  const access = new AccessAdmin(store, audit);
  const first = await firstRun(store, access, audit);
  const proxy = new ProxyControl(control);
  const provider = await createBubblewrapProvider({ home: backend.home });
  const general = (await store.db.selectFrom('channels').select(['id', 'workspace_id']).where('name', '=', 'general').executeTakeFirstOrThrow());
  const owner = (await store.db.selectFrom('members').select('id').where('id', '=', first.ownerMemberId!).executeTakeFirstOrThrow());
  const layers: SessionLayer[] = [];
  const addLayer = async (more: Partial<TagboxConfig['agent']> = {}, extra: Engine[] = engines) => {
    const layer = await startSessionLayer({ store, audit, proxy, provider, agent: agentConfig({ ...agent, ...more }), logger, engines: extra, pollMs: 200, ...(options.pluginsFor ? { pluginsFor: options.pluginsFor } : {}), ...(options.filesFor ? { filesFor: options.filesFor } : {}) });
    layers.push(layer);
    return layer;
  };
  const layer = await addLayer();
  const ownerMember: Member = { id: owner.id, workspaceId: general.workspace_id, externalId: 'owner', displayName: 'Owner', hasAccount: true, isGuest: false, roles: ['owner'], createdAt: '' };
  const events = (thread: string) => readEvents(store.db, thread, 0, 100_000);
  const until = async <T,>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const value = await fn();
      if (value !== undefined && value !== false) return value;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  return {
    backend,
    store,
    audit,
    access,
    proxy,
    provider,
    layer,
    layers,
    orgId: first.org.id,
    workspaceId: general.workspace_id,
    channelId: general.id,
    owner: ownerMember,
    member: (displayName, options = {}) =>
      createMember(store.db, { workspaceId: general.workspace_id, externalId: displayName, displayName, hasAccount: options.hasAccount ?? true, roles: [] }),
    channel: async (channelName, options = {}) => (await createChannel(store.db, { workspaceId: general.workspace_id, externalId: channelName, name: channelName, isPrivate: options.isPrivate ?? false })).id,
    addLayer,
    say: async (text, options = {}) => {
      const { by, ...rest } = options;
      const result = await (layers[0]!).service.invoke({
        workspaceId: general.workspace_id,
        place: { kind: 'channel', channelId: general.id },
        memberId: (by ?? ownerMember).id,
        text,
        trigger: 'message',
        ...rest,
      });
      if (result.status !== 'accepted') throw new Error(`refused: ${result.message}`);
      return result;
    },
    events,
    until,
    untilDone: (thread, turns = 1, timeoutMs = 30_000) =>
      until(`${turns} done event(s) in ${thread}`, async () => {
        const all = await events(thread);
        return all.filter((e) => e.type === 'done').length >= turns ? all : undefined;
      }, timeoutMs),
    close: async () => {
      for (const l of layers) await l.stop();
      daemon.stdin!.end();
      await new Promise((resolve) => daemon.once('exit', resolve));
      await store.close();
      await backend.cleanup();
    },
  };
}

/** The agent's messages of a thread's events, in order. */
export function agentTexts(events: SessionEvent[]): string[] {
  return events.filter((e) => e.type === 'message' && (e.data.author as { kind: string }).kind === 'agent').map((e) => e.data.text as string);
}

export function systemTexts(events: SessionEvent[]): string[] {
  return events.filter((e) => e.type === 'message' && (e.data.author as { kind: string }).kind === 'system').map((e) => e.data.text as string);
}
