import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const TAGBOX_BIN = fileURLToPath(new URL('../../bin/tagbox.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the built `tagbox` command as a user would (the `pretest` script builds
 * it). The child gets the parent's environment minus any TAGBOX_* variables,
 * plus `env`, so tests never leak settings into each other.
 */
export function runTagbox(args: string[], options: { env?: Record<string, string | undefined>; input?: string | Buffer; timeoutMs?: number } = {}): Promise<CliResult> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TAGBOX_')));
  const child = spawn(process.execPath, [TAGBOX_BIN, ...args], {
    cwd: REPO_ROOT,
    env: { ...base, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => stdout.push(c));
  child.stderr.on('data', (c: Buffer) => stderr.push(c));
  child.stdin.end(options.input ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') });
    });
  });
}

/** The port a `tagbox proxy` child prints in its `listening on 127.0.0.1:PORT` line; rejects (with its stderr) if it exits first or is silent for `timeoutMs`. */
export function listeningPort(child: ChildProcess, stderr: () => string, timeoutMs = 30_000): Promise<number> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`tagbox proxy: no "listening on" within ${timeoutMs / 1000} s:\n${stderr()}`)), timeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString('utf8');
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`tagbox proxy exited ${code}:\n${stderr()}`));
    });
  });
}
