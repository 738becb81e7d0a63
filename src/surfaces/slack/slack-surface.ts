import type { Logger } from 'pino';
import type { TagboxConfig } from '../../config/schema.js';
import type { ProxyControl } from '../../server/proxy-control.js';
import type { EventHub } from '../../sessions/event-hub.js';
import type { InvocationPort } from '../../sessions/invocation.js';
import type { ControlStore } from '../../store/database.js';
import { unavailable } from '../../server/http-errors.js';
import type { SlackWorkspace } from './model.js';
import { SlackConnection, type SocketEnvelope } from './slack-connection.js';
import { SlackDirectory } from './slack-directory.js';
import { SlackInbound, type ConnectedWorkspace } from './slack-inbound.js';
import { pendingDeliveries, pruneDeliveries, type InboxEntry } from './slack-inbox-repo.js';
import { findSlackWorkspaceByTeam, listSlackWorkspaces } from './slack-workspaces-repo.js';
import { SlackReplyPoster } from './reply-poster.js';

export interface SlackSurfaceOptions {
  store: ControlStore;
  /** The session layer's entry point. */
  port: InvocationPort;
  hub: EventHub;
  proxy: ProxyControl;
  /** Where the workspaces' proxy listener sockets live (the server's own run directory). */
  runDir: string;
  config: TagboxConfig['slack'];
  logger: Logger;
  /** How often connected workspaces are compared with the store (new ones connected, removed ones closed). */
  syncMs?: number;
}

/** A delivery this old and still pending was interrupted (a crash, a restart): it is processed again. */
const STALE_PENDING_MS = 30_000;
const KEEP_DELIVERIES_MS = 24 * 3600_000;

/**
 * The Slack surface, assembled: per connected workspace a SlackConnection
 * (its Web API client and Socket Mode, through the Agent Proxy), one inbound
 * path for both modes (record -> acknowledge -> process: slack-inbound.ts)
 * and one reply poster (reply-poster.ts). Workspaces connected through the
 * API are picked up within `syncMs`.
 */
export class SlackSurface {
  private readonly connections = new Map<string, SlackConnection>();
  /** The settings each connection was opened with (a change of them reopens it). */
  private readonly workspaces = new Map<string, SlackWorkspace>();
  private readonly failures = new Map<string, { at: number; count: number }>();
  private readonly inbound: SlackInbound;
  private readonly poster: SlackReplyPoster;
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly options: SlackSurfaceOptions) {
    const db = options.store.db;
    this.poster = new SlackReplyPoster({ db, hub: options.hub, clientFor: (id: string) => this.connections.get(id)?.client, config: options.config, logger: options.logger });
    this.inbound = new SlackInbound({ db, port: options.port, directory: new SlackDirectory(db, options.config.userRefreshMinutes), replies: this.poster, logger: options.logger });
  }

  async start(): Promise<void> {
    await this.poster.start();
    // Connecting (auth.test, Socket Mode) runs in the background: a Slack that is slow or down never holds the server's start.
    const tick = () => {
      if (this.stopped) return;
      this.syncing = this.sync().finally(() => {
        this.syncing = undefined;
        if (!this.stopped) this.timer = setTimeout(tick, this.options.syncMs ?? 5000).unref();
      });
    };
    tick();
  }

  /** An Events API delivery (already signature-checked): recorded before the endpoint answers, processed after. */
  async receiveHttp(teamId: string, payload: unknown): Promise<void> {
    const workspace = await findSlackWorkspaceByTeam(this.options.store.db, teamId);
    if (!workspace) {
      this.options.logger.warn({ team: teamId }, 'a Slack event for a team that is not connected here was dropped');
      return;
    }
    const connected = this.connected(workspace.workspaceId);
    // Ours but not connected yet (a start, a reconnect): an error answer makes Slack deliver it again later.
    if (!connected) throw unavailable(`the Slack workspace ${workspace.teamId} is still connecting; deliver again later`, 'slack_connecting');
    const entry = await this.inbound.receive(connected, payload);
    if (entry) this.later(connected, entry);
  }

  /** True once the workspace's connection is up (its bot user id known). */
  isConnected(workspaceId: string): boolean {
    return this.connections.has(workspaceId);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.syncing;
    await this.poster.close();
    for (const connection of this.connections.values()) await connection.close().catch(() => undefined);
    this.connections.clear();
  }

  private connected(workspaceId: string): ConnectedWorkspace | undefined {
    const connection = this.connections.get(workspaceId);
    const workspace = this.workspaces.get(workspaceId);
    return connection && workspace && { workspace, client: connection.client, botUserId: connection.botUserId, fetch: (url) => connection.transport.fetch(url) };
  }

  private later(ws: ConnectedWorkspace, entry: InboxEntry): void {
    setImmediate(() => void this.inbound.process(ws, entry));
  }

  private async sync(): Promise<void> {
    const db = this.options.store.db;
    const wanted = await listSlackWorkspaces(db).catch((error: unknown) => {
      this.options.logger.error({ err: error }, 'could not list Slack workspaces');
      return undefined;
    });
    if (!wanted) return;
    for (const [id, connection] of this.connections) {
      const was = this.workspaces.get(id);
      const now = wanted.find((w) => w.workspaceId === id);
      // Removed, or its mode or token names changed: closed here, reconnected below with the new settings.
      if (!now || now.mode !== was?.mode || now.botTokenSecret !== was.botTokenSecret || now.appTokenSecret !== was.appTokenSecret) {
        this.connections.delete(id);
        this.workspaces.delete(id);
        await connection.close().catch(() => undefined);
      }
    }
    for (const workspace of wanted) {
      if (this.stopped) return;
      if (!this.connections.has(workspace.workspaceId)) await this.connect(workspace);
      const ws = this.connected(workspace.workspaceId);
      if (ws) await this.recover(ws);
    }
    await pruneDeliveries(db, new Date(Date.now() - KEEP_DELIVERIES_MS).toISOString()).catch(() => undefined);
  }

  private async connect(workspace: SlackWorkspace): Promise<void> {
    const failed = this.failures.get(workspace.workspaceId);
    // A workspace that fails to connect (bad token, Slack down) is retried with backoff, up to 5 minutes apart.
    if (failed && Date.now() - failed.at < Math.min(300_000, 5000 * 2 ** failed.count)) return;
    try {
      const connection = await SlackConnection.open({ proxy: this.options.proxy, workspace, runDir: this.options.runDir, db: this.options.store.db, logger: this.options.logger });
      this.connections.set(workspace.workspaceId, connection);
      this.workspaces.set(workspace.workspaceId, { ...workspace, botUserId: connection.botUserId });
      this.failures.delete(workspace.workspaceId);
      if (workspace.mode === 'socket') {
        const ws = this.connected(workspace.workspaceId)!;
        await connection.startSocketMode((envelope: SocketEnvelope) => this.onSocketEnvelope(ws, envelope)).catch(async (error: unknown) => {
          // Not connected until Socket Mode is: the next sync tries again from the start.
          this.connections.delete(workspace.workspaceId);
          this.workspaces.delete(workspace.workspaceId);
          await connection.close().catch(() => undefined);
          throw error;
        });
      }
      this.options.logger.info({ workspace: workspace.workspaceId, team: workspace.teamId, mode: workspace.mode }, 'Slack workspace connected');
    } catch (error) {
      this.failures.set(workspace.workspaceId, { at: Date.now(), count: (failed?.count ?? 0) + 1 });
      this.options.logger.error({ err: error, workspace: workspace.workspaceId, team: workspace.teamId }, 'could not connect the Slack workspace; retrying');
    }
  }

  /** Socket Mode: recorded, then acknowledged, then processed (the same inbox as the Events API). */
  private async onSocketEnvelope(ws: ConnectedWorkspace, envelope: SocketEnvelope): Promise<void> {
    const entry = await this.inbound.receive(ws, envelope.body);
    await envelope.ack();
    if (entry) this.later(ws, entry);
  }

  /** Deliveries a crash left pending. */
  private async recover(ws: ConnectedWorkspace): Promise<void> {
    const before = new Date(Date.now() - STALE_PENDING_MS).toISOString();
    for (const entry of await pendingDeliveries(this.options.store.db, ws.workspace.workspaceId, before)) await this.inbound.process(ws, entry);
  }
}
