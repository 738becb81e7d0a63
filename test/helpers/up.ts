import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO_ROOT, TAGBOX_BIN } from './cli.js';

/** A real `tagbox up` child (launcher, server, Agent Proxy), as a user starts it. */
export interface RunningUp {
  child: ChildProcess;
  url: string;
  port: number;
  /** The first Owner's token (only the first start of a home prints it). */
  token: string | undefined;
  /** The first Owner's one-time web sign-in link (first start only). */
  signInUrl: string | undefined;
  /** The Agent Proxy child's pid, as the banner names it. */
  proxyPid: number;
  /** What it was started with (besides the caller's non-TAGBOX_ environment). */
  env: Record<string, string>;
  exited: Promise<number | null>;
  stdout(): string;
  stderr(): string;
  /** SIGTERM, then the exit code; SIGKILL to what is left if it does not stop within `graceMs`. */
  stop(graceMs?: number): Promise<number | null>;
}

const MASTER_KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 41 + 7) % 256)).toString('base64');

/**
 * Starts `tagbox up --port PORT` (0: any) with `env` (TAGBOX_HOME and the
 * database) and resolves once it printed its URL and the proxy is ready.
 */
export async function startUp(env: Record<string, string>, port = 0, timeoutMs = 60_000): Promise<RunningUp> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TAGBOX_')));
  const fullEnv = { TAGBOX_MASTER_KEY: MASTER_KEY, ...env };
  const child = spawn(process.execPath, [TAGBOX_BIN, 'up', '--port', String(port)], {
    cwd: REPO_ROOT,
    env: { ...base, ...fullEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const end = Date.now() + timeoutMs;
  let url: string | undefined;
  while (!url) {
    // The banner is one write: once the proxy line is there, so are the URL and any token.
    if (/Agent Proxy: ready/.test(out)) url = /Tagbox is up at (http:\/\/\S+)/.exec(out)?.[1];
    if (child.exitCode !== null) throw new Error(`tagbox up exited ${child.exitCode}:\n${err}`);
    if (Date.now() > end) {
      child.kill('SIGKILL');
      throw new Error(`tagbox up did not start:\n${out}\n${err}`);
    }
    if (!url) await sleep(100);
  }
  return {
    child,
    url,
    port: Number(new URL(url).port),
    token: /^\s+(tbx_\S+)$/m.exec(out)?.[1],
    signInUrl: /^\s+(https?:\/\/\S+\/signin#token=tbl_\S+)$/m.exec(out)?.[1],
    proxyPid: Number(/Agent Proxy: ready, pid (\d+)/.exec(out)?.[1]),
    env: fullEnv,
    exited,
    stdout: () => out,
    stderr: () => err,
    async stop(graceMs = 20_000) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
