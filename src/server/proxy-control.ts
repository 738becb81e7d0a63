import type { Place } from '../access/effective-policy.js';
import { failure, isTagboxError, TagboxError } from '../errors.js';
import type { BlockedEvent } from '../proxy/blocked-event.js';
import type { CredentialKind } from '../vault/kinds.js';
import type { PutResult, SecretMetadata } from '../vault/sealer.js';
import type { SecretStore } from '../vault/secret-store.js';
import type { GithubEvent } from '../proxy/github-event.js';
import { subscribeBlocked, type DroppedReport, type SubscriptionOptions } from './blocked-subscription.js';
import { controlRequest, type ControlRequest, type ControlResponse } from './control-protocol.js';

/**
 * The server's side of the Agent Proxy's control socket: whether the proxy is
 * up, the vault's write-only face (the proxy seals and stores; the server
 * never opens the vault's file or holds its key), and the feed of requests it
 * blocked for sessions.
 */
export class ProxyControl {
  constructor(readonly socketPath: string) {}

  /** The proxy's pid when it answers, else undefined. */
  async ping(timeoutMs = 1000): Promise<number | undefined> {
    try {
      const answer = await controlRequest(this.socketPath, { op: 'ping' }, timeoutMs);
      return answer.ok ? (answer.pid ?? 0) : undefined;
    } catch {
      return undefined;
    }
  }

  async waitReady(timeoutMs: number): Promise<number | undefined> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const pid = await this.ping();
      if (pid !== undefined || Date.now() > end) return pid;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /**
   * Every blocked decision of a session's listener, as the proxy sends them
   * (throttled there; `onDropped` tells how many it held back). Survives proxy
   * restarts: it reconnects until closed. See blocked-subscription.ts.
   */
  subscribeBlocked(onEvent: (event: BlockedEvent) => void, onDropped?: (report: DroppedReport) => void, options?: SubscriptionOptions): { close(): void } {
    return subscribeBlocked(this.socketPath, onEvent, onDropped, options);
  }

  /** The session layer's view of the feed: blocked requests, and what sessions did on GitHub. */
  subscribeFeed(onBlocked: (event: BlockedEvent) => void, onGithub?: (event: GithubEvent) => void): { close(): void } {
    return subscribeBlocked(this.socketPath, onBlocked, undefined, onGithub ? { onGithub } : {});
  }

  async caCert(): Promise<string> {
    return (await this.call({ op: 'ca-cert' })).pem ?? '';
  }

  /**
   * A listener for one session at `socketPath`, whose policy the proxy computes
   * from the database for `place` and keeps current as access changes.
   */
  async openListener(session: string, socketPath: string, place: Place): Promise<void> {
    await this.call({ op: 'open-listener', session, socketPath, place });
  }

  /** A listener for `tagbox exec` at `socketPath` that reaches nothing until a grant is applied to it. */
  async openExecListener(session: string, socketPath: string): Promise<void> {
    await this.call({ op: 'open-listener', session, socketPath });
  }

  /** The bundles an exec client granted become the listener's policy; resolves to their names. */
  async applyGrant(session: string, grant: string): Promise<string[]> {
    return (await this.call({ op: 'apply-grant', session, grant })).bundles ?? [];
  }

  /**
   * The Slack workspace's own listener at `socketPath` (session
   * slackListenerSession(workspaceId)): the proxy builds its policy from the
   * workspace's row and injects the tokens; close it with closeListener.
   */
  async openSlackListener(workspaceId: string, socketPath: string): Promise<void> {
    await this.call({ op: 'open-slack-listener', workspaceId, socketPath });
  }

  /** Closes the session's listener; false when it had none. */
  async closeListener(session: string): Promise<boolean> {
    try {
      await this.call({ op: 'close-listener', session });
      return true;
    } catch (error) {
      if (isTagboxError(error) && error.code === 'no_listener') return false;
      throw error;
    }
  }

  readonly secrets: SecretStore = {
    put: (name, value, kind) => this.put(name, value, kind, false),
    replace: (name, value, kind) => this.put(name, value, kind, true),
    delete: async (name) => (await this.call({ op: 'secret-delete', name })).deleted ?? false,
    list: async (): Promise<SecretMetadata[]> => (await this.call({ op: 'secret-list' })).secrets ?? [],
    metadata: async (name) => (await this.call({ op: 'secret-metadata', name })).metadata ?? undefined,
  };

  private async put(name: string, value: Buffer, kind: CredentialKind | undefined, mustExist: boolean): Promise<PutResult> {
    const answer = await this.call({ op: 'secret-put', name, value: value.toString('base64'), ...(kind ? { kind } : {}), mustExist });
    if (!answer.result) throw failure('the Agent Proxy did not say what it stored', 'vault_unavailable');
    return answer.result;
  }

  private async call(request: ControlRequest): Promise<Extract<ControlResponse, { ok: true }>> {
    let answer: ControlResponse;
    try {
      answer = await controlRequest(this.socketPath, request, 10_000);
    } catch (error) {
      throw failure(`the Agent Proxy (and with it the vault) is not reachable: ${(error as Error).message}`, 'vault_unavailable', error);
    }
    if (answer.ok) return answer;
    // The proxy's error keeps its meaning here (a bad name is still a 400 at the API).
    throw new TagboxError(answer.error, { exitCode: answer.exitCode === 2 ? 2 : 1, code: answer.code ?? 'vault_failed' });
  }
}
