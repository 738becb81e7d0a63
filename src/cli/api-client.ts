import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { request } from 'undici';
import { failure, invalidInput, TagboxError } from '../errors.js';
import type { CliContext } from './context.js';
import { forTerminal } from './terminal-text.js';

/**
 * How a CLI verb talks to a running Tagbox (`tagbox chat`, `tagbox schedule`):
 * over its HTTP API, as a member. The server: `--url`, else TAGBOX_URL, else
 * this machine's `server.host:server.port`. The credential: `--token`, else
 * TAGBOX_TOKEN, else the local Owner's token that `tagbox up`'s first run left
 * in TAGBOX_HOME (0600), so that on the server's own machine it needs no setup.
 */
export interface ApiClient {
  readonly url: string;
  call<T = unknown>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<T>;
  /** The raw response, for streams (SSE). */
  open(path: string, headers?: Record<string, string>, signal?: AbortSignal): Promise<Awaited<ReturnType<typeof request>>>;
}

export interface ApiFlags {
  url?: string;
  token?: string;
}

/** Adds --url and --token to a verb. */
export function withApiFlags(command: Command): Command {
  return command
    .option('--url <url>', 'the Tagbox server (default: TAGBOX_URL, else this machine\'s server.host and server.port)')
    .option('--token <token>', 'API token (default: TAGBOX_TOKEN, else the local Owner token in TAGBOX_HOME)');
}

export function apiClient(ctx: CliContext, flags: ApiFlags, env: NodeJS.ProcessEnv = process.env): ApiClient {
  const url = (flags.url ?? env.TAGBOX_URL ?? `http://${hostForUrl(ctx.config.server.host)}:${ctx.config.server.port}`).replace(/\/+$/, '');
  if (!/^https?:\/\//.test(url)) throw invalidInput(`--url: expected http://HOST:PORT or https://..., got "${url}"`);
  const token = flags.token ?? env.TAGBOX_TOKEN ?? readOwnerToken(ctx.paths.ownerToken);
  const auth = { authorization: `Bearer ${token}` };
  const unreachable = (error: unknown) =>
    failure(`cannot reach Tagbox at ${url}: ${(error as Error).message} (is \`tagbox up\` running? --url or TAGBOX_URL point elsewhere)`, 'server_unreachable', error);
  return {
    url,
    async call<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
      const response = await request(`${url}${path}`, {
        method: method as 'GET',
        headers: { ...auth, ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      }).catch((error: unknown) => {
        throw unreachable(error);
      });
      const text = await response.body.text();
      const parsed = text ? safeJson(text) : undefined;
      if (response.statusCode >= 400) throw new ApiError(method, path, response.statusCode, parsed, text);
      return parsed as T;
    },
    async open(path, headers = {}, signal) {
      return request(`${url}${path}`, { method: 'GET', headers: { ...auth, ...headers }, ...(signal ? { signal } : {}) }).catch((error: unknown) => {
        throw unreachable(error);
      });
    },
  };
}

/**
 * A 4xx/5xx answer. The API answers `{error: {code, message}}`; the message
 * names what was wrong, so it is what the user sees. `body` is kept for
 * callers that act on the answer (a refused chat message carries its reason).
 * Its 400s are invalid input (exit 2).
 */
export class ApiError extends TagboxError {
  constructor(
    method: string,
    path: string,
    readonly status: number,
    readonly body: unknown,
    text: string,
  ) {
    const error = (body as { error?: unknown } | undefined)?.error;
    const said = typeof error === 'string' ? error : typeof (error as { message?: unknown })?.message === 'string' ? (error as { message: string }).message : text.slice(0, 500);
    // The server's words reach a terminal: they are data (invariant 9).
    super(`${method} ${path}: ${status} ${forTerminal(said)}`, { exitCode: status === 400 ? 2 : 1, code: status === 401 ? 'unauthenticated' : 'api_error' });
    this.name = 'ApiError';
  }
}

function readOwnerToken(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    throw failure(
      `no API token: pass --token or set TAGBOX_TOKEN (on the server's machine, \`tagbox up\` leaves the local Owner's token in ${file})`,
      'unauthenticated',
    );
  }
}

function hostForUrl(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
