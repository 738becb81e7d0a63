/**
 * The real `tagbox up` for a benchmark: spawned as a user starts it, in a
 * fresh TAGBOX_HOME, and stopped with everything it started — also when the
 * benchmark fails or is interrupted (the caller registers `stop` first).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { childrenOf, processTable, stillRunning, subtree, type ProcessInfo } from './proc-tree.js';

export const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));
export const TAGBOX_BIN = join(REPO_ROOT, 'bin', 'tagbox.js');

export interface TagboxUp {
  home: string;
  launcherPid: number;
  /** Resolves once the banner says the server and the Agent Proxy are ready. */
  ready: Promise<{ url: string; token: string }>;
  /** The `server-daemon` child of the launcher. */
  serverPid(): number;
  /** The last output of the launcher and its children, for a failure's message. */
  output(): string;
  /** SIGTERM, then SIGKILL to whatever is left of its process tree; removes the home. Idempotent. */
  stop(): Promise<void>;
}

/** Environment without the caller's TAGBOX_* settings, plus `env`. */
export function cleanEnv(env: Record<string, string>): Record<string, string> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k, v]) => !k.startsWith('TAGBOX_') && v !== undefined)) as Record<string, string>;
  return { ...base, ...env };
}

export function launchUp(env: Record<string, string>, readyTimeoutMs = 90_000): TagboxUp {
  const home = mkdtempSync(join(tmpdir(), 'tagbox-bench-up-'));
  // In the benchmark's process group: a Ctrl-C stops it (it stops its server) even if the benchmark dies first.
  const child = spawn(process.execPath, [TAGBOX_BIN, 'up', '--port', '0'], {
    cwd: REPO_ROOT,
    env: cleanEnv({ TAGBOX_HOME: home, TAGBOX_LOG_LEVEL: 'warn', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (c: Buffer) => (out = (out + c.toString('utf8')).slice(-64 * 1024));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stopping: Promise<void> | undefined;

  const ready = (async () => {
    const end = Date.now() + readyTimeoutMs;
    for (;;) {
      const url = /Tagbox is up at (http:\/\/\S+)/.exec(out)?.[1];
      if (url && /Agent Proxy: ready/.test(out)) {
        // Left by the server on first run, 0600 (its user and root).
        const token = readFileSync(join(home, 'owner.token'), 'utf8').trim();
        return { url, token };
      }
      if (child.exitCode !== null) throw new Error(`tagbox up exited ${child.exitCode} before it was ready:\n${out}`);
      if (Date.now() > end) throw new Error(`tagbox up was not ready within ${readyTimeoutMs / 1000} s:\n${out}`);
      await sleep(100);
    }
  })();
  ready.catch(() => undefined);

  const serverPid = (): number => {
    const server = childrenOf(processTable(), child.pid!).find((p) => p.args.includes('server-daemon'));
    if (!server) throw new Error('tagbox up has no server-daemon child');
    return server.pid;
  };

  const stop = () =>
    (stopping ??= (async () => {
      const table = processTable();
      const tree: ProcessInfo[] = subtree(table, child.pid!).flatMap((pid) => table.get(pid) ?? []);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await Promise.race([exited, sleep(30_000)]);
      }
      // Whatever did not stop in time: the server's process group (it is detached from the launcher), then any one left.
      for (const p of tree) if (p.args.includes('server-daemon')) killGroup(p.pid);
      for (const p of tree) if (stillRunning(p)) killPid(p.pid);
      rmSync(home, { recursive: true, force: true });
    })());

  return { home, launcherPid: child.pid!, ready, serverPid, output: () => out, stop };
}

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // no such group: it ended
  }
}

function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // ended meanwhile
  }
}
