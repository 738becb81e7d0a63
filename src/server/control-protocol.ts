import { createConnection } from 'node:net';
import type { Place } from '../access/effective-policy.js';
import type { GithubEvent } from '../proxy/github-event.js';
import type { BlockedEvent } from '../proxy/blocked-event.js';
import type { CredentialKind } from '../vault/kinds.js';
import type { PutResult, SecretMetadata } from '../vault/sealer.js';

/**
 * The Agent Proxy child's control socket: one JSON object per line each way.
 * Only the server may use it: the proxy checks the peer's credentials
 * (SO_PEERCRED: its pid and uid) on every connection and refuses anyone else.
 *   {op: 'ping'}                                        -> {ok: true, pid}
 *   {op: 'open-listener', session, socketPath, place?}  -> {ok: true, address}
 *   {op: 'open-slack-listener', workspaceId, socketPath} -> {ok: true, address}
 *       the Slack workspace's own listener (session slackListenerSession(workspaceId)):
 *       the proxy reads the workspace's slack_workspaces row itself and compiles
 *       slackApiBundle from it, so the server names a workspace, never a token or a
 *       host. The socket is 0660: the server (the proxy's group) connects, no sandbox
 *       user can. Closed with close-listener and that session name; reopened (close,
 *       open) when the row's token names change.
 *   {op: 'apply-grant', session, grant}                 -> {ok: true, bundles}
 *       the bundles an exec client granted (on the proxy's grant socket, never through the
 *       server: proxy/exec-grants.ts) become the policy of a listener opened without a place
 *       (atomically: requests already decided finish on the old policy); the answer names
 *       them. A grant is used once. `tagbox exec` handed to the server builds its sandbox
 *       ahead behind a listener that reaches nothing, then applies the client's grant.
 *   {op: 'close-listener', session}                     -> {ok: true}
 *   {op: 'ca-cert'}                                     -> {ok: true, pem}
 *   {op: 'secret-put', name, value (base64), kind?, mustExist?} -> {ok: true, result}
 *   {op: 'secret-delete', name}                         -> {ok: true, deleted}
 *   {op: 'secret-list'}                                 -> {ok: true, secrets}
 *   {op: 'secret-metadata', name}                       -> {ok: true, metadata?}
 *   {op: 'subscribe-blocked'}                           -> {ok: true}, then, for as long as the
 *       connection lives, one FeedLine per blocked decision of a session's listener:
 *       {event: 'blocked', ...BlockedEvent} or {event: 'dropped', session, count}, and
 *       {event: 'github', ...GithubEvent} for a push that landed or a pull request created. Throttled
 *       at the proxy (one per session, host and port a second; 50 a session a second); what
 *       the throttle or a slow reader cost is counted and told at most once a second. The
 *       proxy reads nothing more on that connection. Several subscribers may exist.
 * Failures answer {ok: false, error}. With `place` (a channel or a member's DM)
 * the child computes the effective policy from the database itself and keeps
 * it current as admins change access; without, nothing is reachable until an
 * exec client's grant is applied (apply-grant). The server never hands the proxy
 * bundles of its own. The vault lives with the
 * proxy alone: the server hands it a value to seal and never gets one back.
 */
export type ControlRequest =
  | { op: 'ping' }
  | { op: 'open-listener'; session: string; socketPath: string; place?: Place }
  | { op: 'open-slack-listener'; workspaceId: string; socketPath: string }
  | { op: 'apply-grant'; session: string; grant: string }
  | { op: 'close-listener'; session: string }
  | { op: 'ca-cert' }
  | { op: 'secret-put'; name: string; value: string; kind?: CredentialKind; mustExist?: boolean }
  | { op: 'secret-delete'; name: string }
  | { op: 'secret-list' }
  | { op: 'secret-metadata'; name: string }
  | { op: 'subscribe-blocked' };

/** What a `subscribe-blocked` connection carries after its `{ok: true}`. */
export type FeedLine = ({ event: 'blocked' } & BlockedEvent) | ({ event: 'github' } & GithubEvent) | { event: 'dropped'; session: string; count: number };

export type ControlResponse =
  | {
      ok: true;
      pid?: number;
      address?: string;
      pem?: string;
      result?: PutResult;
      deleted?: boolean;
      secrets?: SecretMetadata[];
      metadata?: SecretMetadata | null;
      /** The names of the bundles a grant held (apply-grant). */
      bundles?: string[];
    }
  /** `code` says what failed for callers that act on it (e.g. `no_listener`: the session has none, or the proxy restarted). */
  | { ok: false; error: string; code?: string; exitCode?: number };

/** The longest line either side accepts (a secret is at most 64 KiB, base64 in JSON). */
export const MAX_CONTROL_LINE = 256 * 1024;

/** Sends one request and waits for its answer (one connection per request: simple, and rare). */
export function controlRequest(socketPath: string, request: ControlRequest, timeoutMs = 2000): Promise<ControlResponse> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    let buffer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer from the proxy control socket within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      if (buffer.length > MAX_CONTROL_LINE) {
        clearTimeout(timer);
        socket.destroy();
        reject(new Error('the proxy control socket answered with an over-long line'));
        return;
      }
      const end = buffer.indexOf('\n');
      if (end < 0) return;
      clearTimeout(timer);
      socket.end();
      try {
        resolve(JSON.parse(buffer.slice(0, end)) as ControlResponse);
      } catch (error) {
        reject(error as Error);
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      reject(new Error('the proxy control socket closed without an answer'));
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}
