import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { controlRequest } from '../../src/server/control-protocol.js';
import { BACKENDS, createTestBackend, type TestBackend } from '../helpers/backends.js';
import { REPO_ROOT, TAGBOX_BIN } from '../helpers/cli.js';

/** One `tagbox up` child and what it printed. */
interface Up {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
}

/** Given as TAGBOX_MASTER_KEY: it must reach the proxy's environment and never the server's. */
const MASTER_KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 37 + 11) % 256)).toString('base64');

function startUp(env: Record<string, string>): Up {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TAGBOX_')));
  const child = spawn(process.execPath, [TAGBOX_BIN, 'up', '--port', '0'], {
    cwd: REPO_ROOT,
    env: { ...base, TAGBOX_MASTER_KEY: MASTER_KEY, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function until<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 40_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function healthz(url: string): Promise<number> {
  try {
    return (await fetch(`${url}/healthz`)).status;
  } catch {
    return 0;
  }
}

const ready = (up: Up) => () => {
  const out = up.stdout();
  const url = /Tagbox is up at (http:\/\/\S+)/.exec(out)?.[1];
  const pid = /Agent Proxy: ready, pid (\d+)/.exec(out)?.[1];
  // The whole banner is one write: once the proxy line is there, so is any token.
  if (!url || !pid) return undefined;
  return { url, proxyPid: Number(pid), token: /^\s+(tbx_\S+)$/m.exec(out)?.[1] };
};

describe.each(BACKENDS)('tagbox up end to end (%s)', (name) => {
  let backend: TestBackend | undefined;
  const ups: Up[] = [];
  afterEach(async () => {
    for (const up of ups.splice(0)) if (up.child.exitCode === null) up.child.kill('SIGKILL');
    await backend?.cleanup();
  });

  it('serves the API, supervises the proxy in its own process, and stops both', async () => {
    backend = await createTestBackend(name);
    const up = startUp(backend.env);
    ups.push(up);
    const { url, proxyPid, token } = await until('tagbox up to be ready', ready(up));
    const canary = `canary-${Math.random().toString(36).slice(2)}${Date.now()}`;
    expect(token).toMatch(/^tbx_/);
    expect(proxyPid).not.toBe(up.child.pid);
    expect(alive(proxyPid)).toBe(true);
    expect(await healthz(url)).toBe(200);
    const org = await fetch(`${url}/api/v1/org`, { headers: { authorization: `Bearer ${token}` } });
    expect(org.status).toBe(200);
    // The server holds the public key only, yet can seal through it.
    const put = await fetch(`${url}/api/v1/secrets/gh-token`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ value: canary }) });
    expect(put.status).toBe(200);
    expect(await put.text()).not.toContain(canary);

    // Only the server may use the proxy's control socket (per-session listeners and the
    // vault are driven through it; see proxy-daemon.test.ts): this test process is refused.
    const control = join(backend.home, 'run', `proxy-${up.child.pid}.sock`);
    const refused = await controlRequest(control, { op: 'open-listener', session: 'evil', socketPath: join(backend.home, 'run', 'evil.sock') }).catch(
      (error: Error) => ({ ok: false as const, error: error.message }),
    );
    expect(refused.ok).toBe(false);
    expect(existsSync(join(backend.home, 'run', 'evil.sock'))).toBe(false);

    // Three processes: the launcher, the server and the proxy; the key reaches the proxy only.
    const serverPid = serverChild(up.child.pid!);
    expect(serverPid).toBeDefined();
    expect(environOf(serverPid!)).not.toContain(MASTER_KEY);
    expect(environOf(proxyPid)).toContain(`TAGBOX_MASTER_KEY=${MASTER_KEY}`);
    if (process.getuid!() === 0) {
      // Privilege separation: each its own user, and the server's cannot read the vault.
      expect(userOf(serverPid!)).toBe('tagbox');
      expect(userOf(proxyPid)).toBe('tagbox-proxy');
      for (const file of ['vault/vault.db', 'vault/master.key', 'ca/ca.key']) {
        const read = spawnSync('runuser', ['-u', 'tagbox', '--', 'cat', join(backend.home, file)], { encoding: 'utf8' });
        expect(read.status, file).not.toBe(0);
        expect(read.stderr).toMatch(/Permission denied/);
      }
    } else {
      expect(userOf(serverPid!)).toBe(userOf(process.pid));
    }

    // A dead proxy makes /healthz 503, and is restarted.
    process.kill(proxyPid, 'SIGKILL');
    await until('healthz 503', async () => ((await healthz(url)) === 503 ? true : undefined), 10_000);
    await until('healthz 200 again', async () => ((await healthz(url)) === 200 ? true : undefined), 20_000);

    const restarted = proxyChildren(up.child.pid!);
    expect(restarted).toHaveLength(1);
    expect(restarted[0]).not.toBe(proxyPid);

    up.child.kill('SIGTERM');
    expect(await up.exited).toBe(0);
    // Neither the server nor its proxy child ever printed or logged the value.
    expect(up.stdout() + up.stderr()).not.toContain(canary);
    await until('the proxy child to exit', () => (alive(restarted[0]!) ? undefined : true), 10_000);

    // A second start finds the Owner: no token is printed again.
    const again = startUp(backend.env);
    ups.push(again);
    const second = await until('second start', ready(again));
    expect(second.token).toBeUndefined();
    again.child.kill('SIGTERM');
    expect(await again.exited).toBe(0);
  });
});

describe('tagbox up on a port in use', () => {
  it('exits 1 and leaves no proxy child behind', async () => {
    const backend = await createTestBackend('sqlite');
    const { createServer } = await import('node:net');
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
    const port = (blocker.address() as { port: number }).port;
    try {
      const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TAGBOX_')));
      const child = spawn(process.execPath, [TAGBOX_BIN, 'up', '--port', String(port)], { cwd: REPO_ROOT, env: { ...base, ...backend.env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
      let children: number[] = [];
      const poll = setInterval(() => {
        if (child.pid) children = [...new Set([...children, ...proxyChildren(child.pid)])];
      }, 50);
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      clearInterval(poll);
      expect(code).toBe(1);
      expect(err).toMatch(/EADDRINUSE|in use/);
      for (const pid of children) await until('the proxy child to exit', () => (alive(pid) ? undefined : true), 10_000);
    } finally {
      blocker.close();
      await backend.cleanup();
    }
  });
});

describe('two tagbox up on one Postgres schema', () => {
  let backend: TestBackend | undefined;
  const homes: string[] = [];
  const ups: Up[] = [];
  afterEach(async () => {
    for (const up of ups.splice(0)) if (up.child.exitCode === null) up.child.kill('SIGKILL');
    for (const h of homes.splice(0)) rmSync(h, { recursive: true, force: true });
    await backend?.cleanup();
  });

  it('both serve; exactly one prints a first-run token', async () => {
    backend = await createTestBackend('postgres');
    for (let i = 0; i < 2; i++) {
      const home = mkdtempSync(join(tmpdir(), 'tagbox-up-'));
      homes.push(home);
      ups.push(startUp({ ...backend.env, TAGBOX_HOME: home }));
    }
    const states = await Promise.all(ups.map((up) => until('both ready', ready(up))));
    expect(states.filter((s) => s.token !== undefined)).toHaveLength(1);
    expect(states[0]!.url).not.toBe(states[1]!.url);
    const token = states.find((s) => s.token)!.token!;
    for (const s of states) {
      expect(await healthz(s.url)).toBe(200);
      // One database: the token works on either server.
      expect((await fetch(`${s.url}/api/v1/org`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    }
    for (const up of ups) up.child.kill('SIGTERM');
    expect(await Promise.all(ups.map((up) => up.exited))).toEqual([0, 0]);
  });
});

function environOf(pid: number): string {
  return readFileSync(`/proc/${pid}/environ`, 'utf8');
}

function userOf(pid: number): string {
  return execFileSync('ps', ['-o', 'user=', '-p', String(pid)], { encoding: 'utf8' }).trim();
}

function serverChild(pid: number): number | undefined {
  return children(pid, 'server-daemon')[0];
}

/** Pids of a process's `proxy-daemon` children. */
function proxyChildren(pid: number): number[] {
  return children(pid, 'proxy-daemon');
}

function children(pid: number, verb: string): number[] {
  let lines: string[];
  try {
    lines = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(pid)], { encoding: 'utf8' }).split('\n');
  } catch {
    return []; // ps exits 1 when there is no child at all
  }
  return lines.filter((l) => l.includes(verb)).map((l) => Number(l.trim().split(/\s+/)[0]));
}
