import type { ChildProcess } from 'node:child_process';
import { get } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { chmodSync } from 'node:fs';
import { dirname } from 'node:path';
import { createTestCa } from '../fixtures/ca.js';
import { startEchoUpstream, type EchoUpstream } from '../fixtures/echo-upstream.js';
import { SseParser } from '../../src/cli/chat/sse-parser.js';
import { runTagbox } from '../helpers/cli.js';
import { startUp as startRunningUp, type RunningUp } from '../helpers/up.js';

/**
 * The real `tagbox up` for the session e2e suites: spawned as a user would
 * (launcher, server child, proxy child; privilege separation when root),
 * driven only over its HTTP API, its SSE stream and the `tagbox` CLI.
 */

/**
 * Per test and hook: a `tagbox up` start, a few turns and a stop, on a busy CI
 * machine. Generous on purpose; no assertion depends on it.
 */
export const E2E_TIMEOUT = 180_000;

export interface ApiResponse {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- responses are read ad hoc
  body: any;
  text: string;
}

export interface ThreadEvent {
  id: number;
  event: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- event data is read ad hoc
  data: any;
}

/** `tagbox up` (test/helpers/up.ts) with its API at hand. */
export interface Up extends Omit<RunningUp, 'stop'> {
  launcher: ChildProcess;
  api(token: string, method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse>;
  /** SIGTERM, and wait for the launcher to exit. */
  stop(): Promise<void>;
}

/** Polls until `fn` gives a value; the timeout is generous, never a threshold under test. */
export async function until<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

export async function startUp(env: Record<string, string>): Promise<Up> {
  const up = await startRunningUp({ TAGBOX_LOG_LEVEL: 'warn', ...env });
  const api: Up['api'] = async (token, method, path, body, headers = {}) => {
    const res = await fetch(`${up.url}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, body: parsed, text };
  };
  return { ...up, launcher: up.child, api, stop: async () => void (await up.stop()) };
}

/**
 * A TLS echo upstream that `tagbox up` reaches for `hosts` (mapped with
 * upstream.connectTo, its CA trusted): pass `env` to startUp.
 */
export async function echoUpstreamFor(hosts: string[]): Promise<{ echo: EchoUpstream; env: Record<string, string> }> {
  const ca = await createTestCa();
  // The proxy runs as tagbox-proxy (privilege separation): it must be able to read the upstream CA.
  chmodSync(dirname(ca.certFile), 0o755);
  const echo = await startEchoUpstream({ ca });
  return {
    echo,
    env: { TAGBOX_UPSTREAM_CONNECT_TO: hosts.map((h) => `${h}:443:127.0.0.1:${echo.httpsPort}`).join(','), TAGBOX_UPSTREAM_CA_FILE: ca.certFile },
  };
}

/** The web workspace and its `general` channel, as the first run made them. */
export async function webWorkspace(up: Up, owner: string): Promise<{ workspaceId: string; generalId: string }> {
  const workspaces = await up.api(owner, 'GET', '/workspaces');
  const web = (workspaces.body as Array<{ id: string; kind: string }>).find((w) => w.kind === 'web')!;
  const channels = await up.api(owner, 'GET', `/workspaces/${web.id}/channels`);
  const general = (channels.body as Array<{ id: string; name: string }>).find((c) => c.name === 'general')!;
  return { workspaceId: web.id, generalId: general.id };
}

/** A new member of the workspace and a member-role token minted the operator's way (`tagbox token create`). */
export async function newMember(up: Up, owner: string, workspaceId: string, name: string, extra: { hasAccount?: boolean } = {}): Promise<{ id: string; token: string }> {
  const created = await up.api(owner, 'POST', `/workspaces/${workspaceId}/members`, { externalId: name.toLowerCase(), displayName: name, hasAccount: extra.hasAccount ?? true });
  if (created.status !== 201) throw new Error(`creating member ${name}: ${created.status} ${created.text}`);
  const id = (created.body as { id: string }).id;
  const minted = await runTagbox(['token', 'create', '--member', id, '--name', `e2e-${name}`], { env: up.env });
  if (minted.code !== 0) throw new Error(`tagbox token create: ${minted.stderr}`);
  return { id, token: minted.stdout.trim() };
}

/**
 * Reads a thread's SSE stream (from the start, or after `after`) until
 * `done(events)` holds; returns every event read. Fails with what it saw.
 * Plain node:http on a connection of its own, closed when done: a fetch()
 * whose body is abandoned keeps its socket for a while, and `tagbox up` would
 * then wait for it when stopping.
 */
export async function readEvents(up: Up, token: string, thread: string, done: (events: ThreadEvent[]) => boolean, options: { after?: number; timeoutMs?: number } = {}): Promise<ThreadEvent[]> {
  const events: ThreadEvent[] = [];
  const seen = () => events.map((e) => `${e.id} ${e.event} ${JSON.stringify(e.data)}`).join('\n');
  return new Promise((resolve, reject) => {
    const request = get(
      `${up.url}/api/v1/threads/${thread}/events`,
      { agent: false, headers: { authorization: `Bearer ${token}`, ...(options.after !== undefined ? { 'last-event-id': String(options.after) } : {}) } },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          return finish(new Error(`events of ${thread}: ${res.statusCode}`));
        }
        res.setEncoding('utf8');
        const parser = new SseParser();
        res.on('data', (chunk: string) => {
          for (const e of parser.push(chunk)) {
            events.push({ id: Number(e.id), event: e.type, data: JSON.parse(e.data) });
            if (done(events)) return finish();
          }
        });
        res.on('end', () => finish(new Error(`the event stream of ${thread} ended; saw:\n${seen()}`)));
      },
    );
    const timer = setTimeout(() => finish(new Error(`timed out reading the events of ${thread}; saw:\n${seen()}`)), options.timeoutMs ?? 60_000);
    request.on('error', (error) => finish(error));
    let finished = false;
    function finish(error?: Error) {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      request.destroy();
      if (error) reject(error);
      else resolve(events);
    }
  });
}

/** The turn that answers message `messageId`, from its `message` event. */
export function turnOfMessage(events: ThreadEvent[], messageId: string): string | undefined {
  return events.find((e) => e.event === 'message' && e.data.id === messageId)?.data.turn as string | undefined;
}

/** Stops once the turn answering message `messageId` is done. */
export const answered = (messageId: string) => (events: ThreadEvent[]) => {
  const turn = turnOfMessage(events, messageId);
  return turn !== undefined && events.some((e) => e.event === 'done' && e.data.turn === turn);
};

/** The events of one turn. */
export function eventsOfTurn(events: ThreadEvent[], turn: string): ThreadEvent[] {
  return events.filter((e) => e.data?.turn === turn);
}

/** The agent's messages in a list of events. */
export function agentTexts(events: ThreadEvent[]): string[] {
  return events.filter((e) => e.event === 'message' && e.data.author?.kind === 'agent').map((e) => String(e.data.text));
}

export function systemTexts(events: ThreadEvent[]): string[] {
  return events.filter((e) => e.event === 'message' && e.data.author?.kind === 'system').map((e) => String(e.data.text));
}

/** Audit events through the admin API, filtered. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- audit events are read ad hoc
export async function auditEvents(up: Up, owner: string, query: Record<string, string>): Promise<any[]> {
  const res = await up.api(owner, 'GET', `/audit?${new URLSearchParams(query).toString()}`);
  if (res.status !== 200) throw new Error(`audit query: ${res.status} ${res.text}`);
  return (res.body as { events: unknown[] }).events as never[];
}
