import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { createConnection, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { askGrant } from '../../src/cli/exec-hand-off.js';
import type { BlockedEvent } from '../../src/proxy/blocked-event.js';
import type { DroppedReport } from '../../src/server/blocked-subscription.js';
import { controlRequest, type FeedLine } from '../../src/server/control-protocol.js';
import { ProxyControl } from '../../src/server/proxy-control.js';
import { BACKENDS, createTestBackend, type TestBackend } from '../helpers/backends.js';
import { REPO_ROOT, TAGBOX_BIN } from '../helpers/cli.js';

/**
 * The blocked-request feed from the Agent Proxy child to the server, with real
 * processes: a real proxy-daemon, this test process in the server's place
 * (`--peer-pid`), real requests on its session listeners. Each blocked
 * decision reaches every subscriber (redacted, throttled at the proxy), a
 * process that is not the server cannot subscribe, and the server's
 * subscription outlives a proxy restart.
 */
describe.each(BACKENDS)('the blocked-request feed (%s)', (name) => {
  let backend: TestBackend;
  let daemon: ChildProcess;
  let control: string;
  let stderr = '';
  let target: Server;
  let targetPort: number;
  let proxy: ProxyControl;
  const ask = (request: Parameters<typeof controlRequest>[1]) => controlRequest(control, request, 10_000);
  const grantSocket = () => join(backend.home, 'run', 'grant.sock');

  // Subscriber 1: ProxyControl, as the server uses it.
  const events: BlockedEvent[] = [];
  const dropped: DroppedReport[] = [];
  let subscriptions = 0;
  let subscription: { close(): void } | undefined;
  // Subscriber 2: a raw connection, to see the lines exactly as sent.
  let raw: Socket | undefined;
  const rawLines: string[] = [];

  async function startDaemon(): Promise<ChildProcess> {
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TAGBOX_')));
    const child = spawn(process.execPath, [TAGBOX_BIN, 'proxy-daemon', '--control', control, '--peer-pid', String(process.pid), '--grant-socket', grantSocket()], {
      cwd: REPO_ROOT,
      env: { ...base, ...backend.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (c: Buffer) => c.toString('utf8').includes('ready') && resolve());
      child.once('exit', () => reject(new Error(`proxy-daemon exited: ${stderr}`)));
    });
    return child;
  }

  async function openListener(session: string): Promise<string> {
    const socketPath = join(backend.home, 'run', `${session}.sock`);
    const text = `bundles:\n  - name: local\n    domains: [{ host: 127.0.0.1, ports: [${targetPort}] }]\n`;
    const granted = await askGrant(grantSocket(), { file: 'bundles.yaml', text, bundle: [] });
    expect(granted).toMatchObject({ ok: true });
    expect(await ask({ op: 'open-listener', session, socketPath })).toMatchObject({ ok: true });
    expect(await ask({ op: 'apply-grant', session, grant: (granted as { grant: string }).grant })).toMatchObject({ ok: true });
    return socketPath;
  }

  beforeAll(async () => {
    backend = await createTestBackend(name);
    control = join(backend.home, 'run', 'control.sock');
    target = createServer((_req, res) => res.end('reached'));
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    targetPort = (target.address() as AddressInfo).port;
    daemon = await startDaemon();
    proxy = new ProxyControl(control);
    subscription = proxy.subscribeBlocked(
      (e) => events.push(e),
      (d) => dropped.push(d),
      { onSubscribed: () => (subscriptions += 1) },
    );
    raw = createConnection(control);
    let buffer = '';
    raw.on('data', (c: Buffer) => {
      buffer += c.toString('utf8');
      for (let end = buffer.indexOf('\n'); end >= 0; end = buffer.indexOf('\n')) {
        rawLines.push(buffer.slice(0, end));
        buffer = buffer.slice(end + 1);
      }
    });
    raw.write(`${JSON.stringify({ op: 'subscribe-blocked' })}\n`);
    await until(() => subscriptions === 1 && rawLines.length === 1);
    expect(JSON.parse(rawLines[0]!)).toEqual({ ok: true });
  });
  afterAll(async () => {
    subscription?.close();
    raw?.destroy();
    if (daemon.exitCode === null && daemon.signalCode === null) {
      daemon.stdin!.end();
      await new Promise((resolve) => daemon.once('exit', resolve));
    }
    target.close();
    await backend.cleanup();
  });

  const rawFeed = (): FeedLine[] => rawLines.slice(1).map((l) => JSON.parse(l) as FeedLine);
  const eventsOf = (session: string) => events.filter((e) => e.session === session);

  it('tells every subscriber of a blocked request and a blocked CONNECT on a session listener, without the query, and nothing of allowed ones', async () => {
    const socket = await openListener('thread-a');
    const allowed = `http://127.0.0.1:${targetPort}/fine`;
    expect(await viaSocket(socket, allowed)).toBe(200);
    expect(await viaSocket(socket, 'http://blocked.example/repo/x?token=SECRET-QUERY&b=2')).toBe(403);
    expect(await viaSocket(socket, allowed)).toBe(200);
    expect(await connectVia(socket, 'blocked.example:443')).toBe(403);
    expect(await viaSocket(socket, allowed)).toBe(200);
    // The last one marks the end: what came before it has been sent.
    expect(await viaSocket(socket, 'http://sentinel.example/')).toBe(403);
    await until(() => eventsOf('thread-a').some((e) => e.host === 'sentinel.example') && rawFeed().some((l) => l.event === 'blocked' && l.host === 'sentinel.example'));

    const expected = [
      { session: 'thread-a', method: 'GET', scheme: 'http', host: 'blocked.example', port: 80, path: '/repo/x', reason: 'host blocked.example is not allowed by any bundle' },
      { session: 'thread-a', method: 'CONNECT', scheme: 'https', host: 'blocked.example', port: 443, path: '', reason: 'host blocked.example is not allowed by any bundle' },
      { session: 'thread-a', method: 'GET', scheme: 'http', host: 'sentinel.example', port: 80, path: '/', reason: 'host sentinel.example is not allowed by any bundle' },
    ];
    // Exactly these, in order: the allowed requests in between told nothing.
    expect(eventsOf('thread-a').map(({ ts: _ts, ...rest }) => rest)).toEqual(expected);
    expect(rawFeed().map((l) => (l.event === 'blocked' ? (({ ts: _ts, ...rest }) => rest)(l) : l))).toEqual(expected.map((e) => ({ event: 'blocked', ...e })));
    expect(rawLines.join('\n')).not.toContain('SECRET-QUERY');
    expect(rawLines.join('\n')).not.toContain('b=2');
    expect(await ask({ op: 'close-listener', session: 'thread-a' })).toEqual({ ok: true });
  });

  it('throttles at the proxy: one event per host a second and a dropped count for the rest', async () => {
    const socket = await openListener('thread-b');
    const total = 40;
    for (let i = 0; i < total; i++) expect(await viaSocket(socket, `http://hammered.example/${i}`)).toBe(403);
    const droppedFor = (session: string) => dropped.filter((d) => d.session === session).reduce((n, d) => n + d.count, 0);
    // Every request is accounted for: told, or counted as dropped.
    await until(() => eventsOf('thread-b').length + droppedFor('thread-b') === total);
    const told = eventsOf('thread-b');
    expect(told.length).toBeLessThan(total);
    expect(droppedFor('thread-b')).toBe(total - told.length);
    // The events that did go out are at least a second apart.
    for (let i = 1; i < told.length; i++) expect(Date.parse(told[i]!.ts) - Date.parse(told[i - 1]!.ts)).toBeGreaterThanOrEqual(1000);

    expect(await ask({ op: 'close-listener', session: 'thread-b' })).toEqual({ ok: true });

    // Many hosts at once from a fresh session: at most 50 in its first second.
    const flooder = await openListener('thread-f');
    const hosts = 60;
    for (let i = 0; i < hosts; i++) expect(await viaSocket(flooder, `http://h${i}.flood.example/`)).toBe(403);
    await until(() => eventsOf('thread-f').length + droppedFor('thread-f') === hosts);
    const flood = eventsOf('thread-f');
    const start = Date.parse(flood[0]!.ts);
    expect(flood.filter((e) => Date.parse(e.ts) - start < 1000).length).toBeLessThanOrEqual(50);
    expect(new Set(flood.map((e) => e.host)).size).toBe(flood.length);
    expect(await ask({ op: 'close-listener', session: 'thread-f' })).toEqual({ ok: true });
  });

  it('refuses a subscription from any process but the server, and tells it nothing', async () => {
    const socket = await openListener('thread-c');
    // Another process of the same user, holding the connection open while a request is blocked.
    const script = `const s = require('node:net').createConnection(${JSON.stringify(control)});
      let b = ''; s.on('connect', () => s.write(${JSON.stringify(`${JSON.stringify({ op: 'subscribe-blocked' })}\n`)}));
      s.on('data', (c) => { b += c; }); s.on('close', () => { process.stdout.write(b); process.exit(0); });
      setTimeout(() => { process.stdout.write(b); process.exit(0); }, 3000);`;
    const spy = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    spy.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    const exited = new Promise((resolve) => spy.once('exit', resolve));
    expect(await viaSocket(socket, 'http://secret-plans.example/')).toBe(403);
    await exited;
    expect(out.trim().split('\n')).toEqual([JSON.stringify({ ok: false, error: 'refused: only the Tagbox server may use this socket', code: 'forbidden' })]);
    if (process.getuid!() === 0) {
      // Another user altogether (the sandbox's): it cannot reach the socket, or is refused.
      const r = spawnSync('runuser', ['-u', 'tagbox-sandbox', '--', process.execPath, '-e', script], { encoding: 'utf8', timeout: 10_000 });
      expect(r.stdout).not.toContain('"event"');
      expect(r.stdout).not.toContain('"ok":true');
    }
    expect(stderr).toMatch(/refused a process that is not the server/);
    // The server's own subscription heard of it.
    await until(() => eventsOf('thread-c').some((e) => e.host === 'secret-plans.example'));
    expect(await ask({ op: 'close-listener', session: 'thread-c' })).toEqual({ ok: true });
  });

  it('survives a proxy restart: the server reconnects and hears of the next blocked request', async () => {
    const before = subscriptions;
    daemon.kill('SIGKILL');
    await new Promise((resolve) => daemon.once('exit', resolve));
    // The supervisor's part: a new proxy on the same control socket.
    daemon = await startDaemon();
    await until(() => subscriptions > before, 20_000);
    const socket = await openListener('thread-d');
    expect(await viaSocket(socket, 'http://after-restart.example/p?x=1')).toBe(403);
    await until(() => eventsOf('thread-d').length > 0);
    expect(eventsOf('thread-d')).toMatchObject([{ session: 'thread-d', host: 'after-restart.example', port: 80, path: '/p' }]);
  });
});

function viaSocket(socketPath: string, url: string): Promise<number | undefined> {
  const { host } = new URL(url);
  return new Promise((resolve, reject) => {
    httpRequest({ socketPath, path: url, headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode);
    })
      .on('error', reject)
      .end();
  });
}

/** A CONNECT through a session socket; its status. */
function connectVia(socketPath: string, authority: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createConnection(socketPath);
    let answer = '';
    s.on('connect', () => s.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`));
    s.on('data', (c: Buffer) => (answer += c.toString('latin1')));
    s.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0)));
    s.on('error', reject);
  });
}

async function until(fn: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(20);
  }
}
