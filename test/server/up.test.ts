import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
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

function startUp(env: Record<string, string>): Up {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TAGBOX_')));
  const child = spawn(process.execPath, [TAGBOX_BIN, 'up', '--port', '0'], { cwd: REPO_ROOT, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
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

    // The proxy child's control socket opens and closes per-session listeners (default deny).
    const control = join(backend.home, 'run', `proxy-${up.child.pid}.sock`);
    expect(await controlRequest(control, { op: 'ping' })).toEqual({ ok: true, pid: proxyPid });
    const sessionSocket = join(backend.home, 'run', 's1.sock');
    expect(await controlRequest(control, { op: 'open-listener', session: 's1', socketPath: sessionSocket, bundles: [{ name: 'b', domains: ['allowed.example'] }] })).toMatchObject({ ok: true });
    const blocked = await new Promise<{ status?: number; decision?: string | string[] }>((resolve, reject) => {
      httpRequest({ socketPath: sessionSocket, path: 'http://blocked.example/', headers: { host: 'blocked.example' } }, (res) => {
        res.resume();
        resolve({ status: res.statusCode, decision: res.headers['x-tagbox-decision'] });
      })
        .on('error', reject)
        .end();
    });
    expect(blocked).toEqual({ status: 403, decision: 'blocked' });
    expect(await controlRequest(control, { op: 'close-listener', session: 's1' })).toEqual({ ok: true });
    expect(await controlRequest(control, { op: 'close-listener', session: 's1' })).toMatchObject({ ok: false });

    // A session listener for a channel follows the channel's effective policy, live: an admin
    // attaching a bundle through the API (this process) reaches the proxy child's running
    // listener (another process) within 2 s.
    const target = createServer((_req, res) => res.end('reached'));
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    const targetPort = (target.address() as AddressInfo).port;
    try {
      const api = (method: string, path: string, body?: unknown) =>
        fetch(`${url}/api/v1${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
      const ws = (await (await api('POST', '/workspaces', { kind: 'slack', externalId: 'T1', name: 'acme' })).json()) as { id: string };
      const channel = (await (await api('POST', `/workspaces/${ws.id}/channels`, { externalId: 'C1', name: 'eng' })).json()) as { id: string };
      // An exact IP entry is the only way to a private address (here: the test's own server).
      expect((await api('PUT', '/bundles/local', { domains: [{ host: '127.0.0.1', ports: [targetPort] }] })).status).toBe(200);
      const live = join(backend.home, 'run', 's2.sock');
      expect(await controlRequest(control, { op: 'open-listener', session: 's2', socketPath: live, place: { kind: 'channel', channelId: channel.id } })).toMatchObject({ ok: true });
      const viaSession = () =>
        new Promise<number | undefined>((resolve, reject) => {
          httpRequest({ socketPath: live, path: `http://127.0.0.1:${targetPort}/`, headers: { host: `127.0.0.1:${targetPort}` } }, (res) => {
            res.resume();
            resolve(res.statusCode);
          })
            .on('error', reject)
            .end();
        });
      expect(await viaSession()).toBe(403);
      expect((await api('POST', '/bundles/local/scopes', { scope: `channel:${channel.id}` })).status).toBeLessThan(300);
      const attached = Date.now();
      await until('the attach to reach the running listener', async () => ((await viaSession()) === 200 ? true : undefined), 5_000);
      expect(Date.now() - attached).toBeLessThan(2_000);
      expect((await api('DELETE', '/bundles/local/scopes', { scope: `channel:${channel.id}` })).status).toBeLessThan(300);
      const detached = Date.now();
      await until('the detach to reach the running listener', async () => ((await viaSession()) === 403 ? true : undefined), 5_000);
      expect(Date.now() - detached).toBeLessThan(2_000);
      expect(await controlRequest(control, { op: 'close-listener', session: 's2' })).toEqual({ ok: true });
    } finally {
      target.close();
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

/** Pids of a process's `proxy-daemon` children. */
function proxyChildren(pid: number): number[] {
  let lines: string[];
  try {
    lines = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(pid)], { encoding: 'utf8' }).split('\n');
  } catch {
    return []; // ps exits 1 when there is no child at all
  }
  return lines.filter((l) => l.includes('proxy-daemon')).map((l) => Number(l.trim().split(/\s+/)[0]));
}
