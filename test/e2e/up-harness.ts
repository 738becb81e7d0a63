import { spawn, type ChildProcess } from 'node:child_process';
import { get } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { runTagbox, REPO_ROOT, TAGBOX_BIN } from '../helpers/cli.js';

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

/** Given as TAGBOX_MASTER_KEY, as up.test.ts does: the proxy's alone. */
const MASTER_KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 53 + 7) % 256)).toString('base64');

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

export interface Up {
  launcher: ChildProcess;
  url: string;
  /** The first Owner's token (only the first start of a home prints it). */
  token: string | undefined;
  /** The Agent Proxy child's pid, as the banner names it. */
  proxyPid: number;
  env: Record<string, string>;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
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
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TAGBOX_')));
  const fullEnv = { TAGBOX_MASTER_KEY: MASTER_KEY, TAGBOX_LOG_LEVEL: 'warn', ...env };
  const launcher = spawn(process.execPath, [TAGBOX_BIN, 'up', '--port', '0'], { cwd: REPO_ROOT, env: { ...base, ...fullEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  launcher.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  launcher.stderr!.on('data', (c: Buffer) => (err += c.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => launcher.on('exit', (code) => resolve(code)));
  const banner = await until(
    'tagbox up to be ready',
    () => {
      if (launcher.exitCode !== null) throw new Error(`tagbox up exited ${launcher.exitCode}:\n${err}`);
      const url = /Tagbox is up at (http:\/\/\S+)/.exec(out)?.[1];
      // The banner is one write: once the proxy line is there, so is any token.
      const proxyPid = /Agent Proxy: ready, pid (\d+)/.exec(out)?.[1];
      if (!url || !proxyPid) return undefined;
      return { url, proxyPid: Number(proxyPid), token: /^\s+(tbx_\S+)$/m.exec(out)?.[1] };
    },
    60_000,
  );
  const api: Up['api'] = async (token, method, path, body, headers = {}) => {
    const res = await fetch(`${banner.url}/api/v1${path}`, {
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
  return {
    launcher,
    url: banner.url,
    token: banner.token,
    proxyPid: banner.proxyPid,
    env: fullEnv,
    stdout: () => out,
    stderr: () => err,
    exited,
    api,
    stop: async () => {
      if (launcher.exitCode === null && launcher.signalCode === null) launcher.kill('SIGTERM');
      await exited;
    },
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
        let buffer = '';
        res.on('data', (chunk: string) => {
          buffer += chunk;
          for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
            const frame = parseFrame(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
            if (!frame) continue;
            events.push(frame);
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

/** One SSE frame (`id:`, `event:`, `data:` lines); comments and keep-alives are none. */
function parseFrame(frame: string): ThreadEvent | undefined {
  const fields = new Map<string, string>();
  for (const line of frame.split('\n')) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    fields.set(line.slice(0, colon), line.slice(colon + 1).replace(/^ /, ''));
  }
  if (!fields.has('event')) return undefined;
  return { id: Number(fields.get('id')), event: fields.get('event')!, data: JSON.parse(fields.get('data') ?? 'null') };
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
