import { join } from 'node:path';
import type { SocketModeClient } from '@slack/socket-mode';
import type { WebClient } from '@slack/web-api';
import type { Kysely } from 'kysely';
import type { Logger } from '../../log.js';
import type { ProxyControl } from '../../server/proxy-control.js';
import type { Database } from '../../store/tables.js';
import type { SlackWorkspace } from './model.js';
import { slackListenerSession } from './slack-api-policy.js';
import { slackSocketClient, slackWebClient } from './slack-clients.js';
import { SLACK_RETRY_CONFIG } from './slack-retry.js';
import { openSlackTransport, type SlackTransport } from './slack-transport.js';
import { setBotUserId } from './slack-workspaces-repo.js';

/** One Socket Mode delivery of the Events API. */
export interface SocketEnvelope {
  /** The events_api payload: {team_id, event_id, event, ...}. */
  body: unknown;
  /** Slack's retry count, when this is a redelivery. */
  retryNum?: number;
  /** Tells Slack it arrived (within 3 s, before the work). */
  ack: () => Promise<void>;
}

/** What a connection needs of the Agent Proxy's control socket. */
export type SlackProxy = Pick<ProxyControl, 'openSlackListener' | 'closeListener' | 'caCert' | 'ping'>;

export interface SlackConnectionOptions {
  proxy: SlackProxy;
  workspace: SlackWorkspace;
  /** A directory only the server and the proxy reach (TAGBOX_HOME/run): the listener's socket goes there. */
  runDir: string;
  /** Where the bot's user id is stored (setBotUserId). */
  db: Kysely<Database>;
  logger: Logger;
}

const MAX_BACKOFF_MS = 30_000;

/**
 * A Slack workspace, connected: its listener at the Agent Proxy (the proxy
 * injects the tokens), the transport through it, the WebClient, and Socket
 * Mode when started. The proxy's listeners die with it: like a session's
 * (session-sandboxes.ts), the listener is tied to the proxy's pid and reopened
 * when that changed — checked whenever the listener cannot be reached (a call
 * fails to dial it; the WebClient retries the call) and before each Socket
 * Mode reconnect.
 */
export class SlackConnection {
  readonly session: string;
  readonly socketPath: string;
  #epoch: number | undefined;
  #healing: Promise<void> | undefined;
  #socket: SocketModeClient | undefined;
  #reconnecting = false;
  #closed = false;
  #timer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly options: SlackConnectionOptions,
    readonly transport: SlackTransport,
    readonly client: WebClient,
    readonly botUserId: string,
    epoch: number,
  ) {
    this.session = slackListenerSession(options.workspace.workspaceId);
    this.socketPath = socketPathFor(options.runDir, options.workspace.workspaceId);
    this.#epoch = epoch;
  }

  static async open(options: SlackConnectionOptions): Promise<SlackConnection> {
    const { proxy, workspace, logger } = options;
    const socketPath = socketPathFor(options.runDir, workspace.workspaceId);
    const epoch = await openListener(proxy, workspace.workspaceId, socketPath);
    let heal = () => undefined as void;
    let transport: SlackTransport | undefined;
    try {
      transport = openSlackTransport({ socketPath, caPem: await proxy.caCert(), onUnreachable: () => heal() });
      // Retries that outlast a 429 storm (each waits Retry-After): a reply is delayed, never dropped.
      const client = slackWebClient(transport, { logger, retryConfig: SLACK_RETRY_CONFIG });
      const auth = await client.auth.test();
      if (!auth.user_id) throw new Error(`Slack's auth.test for workspace ${workspace.workspaceId} named no bot user`);
      await setBotUserId(options.db, workspace.workspaceId, auth.user_id);
      const connection = new SlackConnection(options, transport, client, auth.user_id, epoch);
      heal = () => void connection.heal().catch((error: unknown) => logger.warn({ err: error, workspace: workspace.workspaceId }, 'could not reopen the Slack listener at the Agent Proxy'));
      return connection;
    } catch (error) {
      await transport?.close().catch(() => undefined);
      await proxy.closeListener(slackListenerSession(workspace.workspaceId)).catch(() => false);
      throw error;
    }
  }

  /**
   * Socket Mode: resolves once connected (rejects when that first connection
   * fails); afterwards every disconnection is followed by a reconnect, with
   * backoff, until close(). Events API deliveries go to `onEnvelope`; other
   * envelope types (interactivity, slash commands) are acknowledged and dropped.
   */
  async startSocketMode(onEnvelope: (envelope: SocketEnvelope) => Promise<void>): Promise<void> {
    if (this.#socket) throw new Error(`Socket Mode is already started for workspace ${this.options.workspace.workspaceId}`);
    if (!this.options.workspace.appTokenSecret) throw new Error(`workspace ${this.options.workspace.workspaceId} has no app-level token: Socket Mode needs one`);
    const { logger } = this.options;
    const socket = slackSocketClient(this.transport, { logger });
    this.#socket = socket;
    socket.on('slack_event', (e: { type: string; body: unknown; retry_num?: number; ack: () => Promise<void> }) => {
      if (e.type !== 'events_api') return void e.ack().catch(() => undefined);
      const envelope: SocketEnvelope = { body: e.body, ack: () => e.ack(), ...(typeof e.retry_num === 'number' ? { retryNum: e.retry_num } : {}) };
      onEnvelope(envelope).catch((error: unknown) => logger.error({ err: error, workspace: this.options.workspace.workspaceId }, 'a Slack event failed'));
    });
    socket.on('disconnected', () => this.#reconnect(0));
    try {
      await this.heal();
      await socket.start();
    } catch (error) {
      // No background retries for a start that never connected: the caller decides.
      this.#socket = undefined;
      clearTimeout(this.#timer);
      this.#reconnecting = false;
      await socket.disconnect().catch(() => undefined);
      throw error;
    }
  }

  /** Closes and reopens the listener: the proxy reads the workspace's row again (its tokens' vault names changed). */
  async reopenListener(): Promise<void> {
    await this.heal(true);
  }

  /** Reopens the listener if the proxy restarted since it was opened (or always, when `force`). */
  heal(force = false): Promise<void> {
    this.#healing ??= (async () => {
      try {
        const pid = await this.options.proxy.ping();
        if (pid === undefined) throw new Error(`the Agent Proxy is not reachable: workspace ${this.options.workspace.workspaceId} cannot reach Slack`);
        if (!force && pid === this.#epoch) return;
        this.options.logger.info({ workspace: this.options.workspace.workspaceId, pid }, 'reopening the Slack listener at the Agent Proxy');
        this.#epoch = await openListener(this.options.proxy, this.options.workspace.workspaceId, this.socketPath);
      } finally {
        this.#healing = undefined;
      }
    })();
    return this.#healing;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#socket?.disconnect().catch(() => undefined);
    await this.transport.close().catch(() => undefined);
    await this.options.proxy.closeListener(this.session).catch(() => false);
  }

  #reconnect(failures: number): void {
    if (this.#closed || !this.#socket || (this.#reconnecting && failures === 0)) return;
    this.#reconnecting = true;
    const delay = failures === 0 ? 0 : Math.min(MAX_BACKOFF_MS, 500 * 2 ** failures);
    this.#timer = setTimeout(() => {
      void (async () => {
        try {
          await this.heal();
          if (this.#closed || !this.#socket) return;
          await this.#socket.start();
          this.#reconnecting = false;
        } catch (error) {
          this.options.logger.warn({ err: error, workspace: this.options.workspace.workspaceId, failures: failures + 1 }, 'Slack Socket Mode: reconnect failed; trying again');
          this.#reconnect(failures + 1);
        }
      })();
    }, delay);
  }
}

/** The listener's socket in the server's run directory (short: a Unix socket path has 107 bytes at most). */
export function socketPathFor(runDir: string, workspaceId: string): string {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(workspaceId)) throw new TypeError(`SlackConnection: workspace id "${workspaceId}" is not a plain id`);
  return join(runDir, `slack-${workspaceId}.sock`);
}

/** Opens the workspace's listener afresh (a stale one of a previous proxy closed first); the proxy's pid. */
async function openListener(proxy: SlackProxy, workspaceId: string, socketPath: string): Promise<number> {
  const pid = await proxy.ping();
  if (pid === undefined) throw new Error(`the Agent Proxy is not reachable: workspace ${workspaceId} cannot reach Slack`);
  await proxy.closeListener(slackListenerSession(workspaceId)).catch(() => false);
  await proxy.openSlackListener(workspaceId, socketPath);
  return pid;
}
