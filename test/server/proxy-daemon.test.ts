import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chmodSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccessAdmin } from '../../src/access/admin-service.js';
import { AuditLog } from '../../src/audit/log.js';
import { askGrant } from '../../src/cli/exec-hand-off.js';
import { controlRequest, type ControlResponse } from '../../src/server/control-protocol.js';
import { openControlStore, type ControlStore } from '../../src/store/database.js';
import { BACKENDS, createTestBackend, type TestBackend } from '../helpers/backends.js';
import { REPO_ROOT, TAGBOX_BIN } from '../helpers/cli.js';

/**
 * The Agent Proxy child as `tagbox up` runs it, driven over its control socket
 * by this test process in the server's place (`--peer-pid` names it): per-session
 * listeners (default deny; a channel's live effective policy), the vault's
 * write-only face, and — the attack — every other process refused (issue 9,
 * items 2 and 13: the control socket accepted raw bundles from any process of
 * the same user).
 */
describe.each(BACKENDS)('the proxy daemon (%s)', (name) => {
  let backend: TestBackend;
  let daemon: ChildProcess;
  let control: string;
  let grantSocket: string;
  let store: ControlStore;
  let stderr = '';
  const ask = (request: Parameters<typeof controlRequest>[1]) => controlRequest(control, request, 10_000);
  /** A grant, as `tagbox exec` asks for one: the bundle file's text, given to the proxy directly. */
  const grant = async (yaml: string, names: string[] = []) => {
    const answer = await askGrant(grantSocket, { file: 'bundles.yaml', text: yaml, bundle: names });
    if (!answer?.ok) throw new Error(`no grant: ${JSON.stringify(answer)}`);
    return answer.grant;
  };

  beforeAll(async () => {
    backend = await createTestBackend(name);
    control = join(backend.home, 'run', 'control.sock');
    grantSocket = join(backend.home, 'run', 'grant.sock');
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TAGBOX_')));
    daemon = spawn(process.execPath, [TAGBOX_BIN, 'proxy-daemon', '--control', control, '--peer-pid', String(process.pid), '--grant-socket', grantSocket], {
      cwd: REPO_ROOT,
      env: { ...base, ...backend.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    daemon.stderr!.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    await new Promise<void>((resolve, reject) => {
      daemon.stdout!.on('data', (c: Buffer) => c.toString('utf8').includes('ready') && resolve());
      daemon.once('exit', () => reject(new Error(`proxy-daemon exited: ${stderr}`)));
    });
    store = await openControlStore(backend.location);
  });
  afterAll(async () => {
    daemon.stdin!.end();
    await new Promise((resolve) => daemon.once('exit', resolve));
    await store.close();
    await backend.cleanup();
  });

  it('answers its peer: ping, the CA certificate', async () => {
    expect(await ask({ op: 'ping' })).toEqual({ ok: true, pid: daemon.pid });
    const ca = await ask({ op: 'ca-cert' });
    expect(ca.ok && ca.pem).toMatch(/^-----BEGIN CERTIFICATE-----/);
  });

  it('seals what its peer gives it and never hands a value back', async () => {
    const canary = `canary-${Math.random().toString(36).slice(2)}`;
    const put = await ask({ op: 'secret-put', name: 'gh-token', value: Buffer.from(canary).toString('base64') });
    expect(put).toMatchObject({ ok: true, result: { name: 'gh-token', version: 1, created: true } });
    const again = await ask({ op: 'secret-put', name: 'gh-token', value: Buffer.from(`${canary}2`).toString('base64'), mustExist: true });
    expect(again).toMatchObject({ ok: true, result: { version: 2, created: false } });
    const listed = await ask({ op: 'secret-list' });
    expect(JSON.stringify(listed)).not.toContain(canary);
    expect(listed.ok && listed.secrets?.map((s) => s.name)).toEqual(['gh-token']);
    expect(await ask({ op: 'secret-metadata', name: 'gh-token' })).toMatchObject({ ok: true, metadata: { version: 2 } });
    // A bad name keeps its meaning (exit 2: a 400 at the API).
    expect(await ask({ op: 'secret-put', name: 'Bad Name', value: 'eA==' })).toMatchObject({ ok: false, exitCode: 2 });
    expect(await ask({ op: 'secret-delete', name: 'gh-token' })).toEqual({ ok: true, deleted: true });
    expect(await ask({ op: 'secret-metadata', name: 'gh-token' })).toEqual({ ok: true, metadata: null });
    expect(stderr).not.toContain(canary);
  });

  it('opens per-session listeners: default deny, and a channel that follows access changes within 2 s', async () => {
    const session = join(backend.home, 'run', 's1.sock');
    const g = await grant('bundles:\n  - name: b\n    domains: [allowed.example]\n');
    expect(await ask({ op: 'open-listener', session: 's1', socketPath: session })).toMatchObject({ ok: true });
    expect(await ask({ op: 'apply-grant', session: 's1', grant: g })).toEqual({ ok: true, bundles: ['b'] });
    expect(await viaSocket(session, 'http://blocked.example/')).toBe(403);
    expect(await ask({ op: 'close-listener', session: 's1' })).toEqual({ ok: true });
    expect(await ask({ op: 'close-listener', session: 's1' })).toMatchObject({ ok: false });

    const target = createServer((_req, res) => res.end('reached'));
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    const port = (target.address() as AddressInfo).port;
    try {
      const admin = new AccessAdmin(store, new AuditLog(store));
      const org = await admin.ensureDefaultOrg();
      const ws = await admin.createWorkspace('test', { orgId: org.id, kind: 'slack', externalId: 'T1', name: 'acme' });
      const channel = await admin.createChannel('test', { workspaceId: ws.id, externalId: 'C1', name: 'eng' });
      // An exact IP entry is the only way to a private address (here: the test's own server).
      await admin.putBundle('test', org.id, { name: 'local', domains: [{ host: '127.0.0.1', ports: [port] }], connections: [] });
      const live = join(backend.home, 'run', 's2.sock');
      expect(await ask({ op: 'open-listener', session: 's2', socketPath: live, place: { kind: 'channel', channelId: channel.id } })).toMatchObject({ ok: true });
      const url = `http://127.0.0.1:${port}/`;
      expect(await viaSocket(live, url)).toBe(403);
      await admin.attach('test', org.id, 'local', { kind: 'channel', id: channel.id });
      const attached = Date.now();
      await until(async () => (await viaSocket(live, url)) === 200);
      expect(Date.now() - attached).toBeLessThan(2_000);
      await admin.detach('test', org.id, 'local', { kind: 'channel', id: channel.id });
      const detached = Date.now();
      await until(async () => (await viaSocket(live, url)) === 403);
      expect(Date.now() - detached).toBeLessThan(2_000);
      // A place's policy is the database's: no grant changes it (and the grant is not spent on it).
      const all = await grant('bundles:\n  - name: all\n    domains: ["*.com"]\n');
      expect(await ask({ op: 'apply-grant', session: 's2', grant: all })).toMatchObject({ ok: false, error: expect.stringMatching(/follows a place/) });
      expect(await ask({ op: 'close-listener', session: 's2' })).toEqual({ ok: true });

      // An exec listener (built ahead, reaching nothing) takes a client's grant at once, and a grant is used once.
      const ahead = join(backend.home, 'run', 's3.sock');
      expect(await ask({ op: 'open-listener', session: 's3', socketPath: ahead })).toMatchObject({ ok: true });
      expect(await viaSocket(ahead, url)).toBe(403);
      const local = await grant(`bundles:\n  - name: local\n    domains: [{ host: 127.0.0.1, ports: [${port}] }]\n  - name: other\n    domains: [other.example]\n`, ['local']);
      expect(await ask({ op: 'apply-grant', session: 's3', grant: local })).toEqual({ ok: true, bundles: ['local'] });
      expect(await viaSocket(ahead, url)).toBe(200);
      expect(await ask({ op: 'apply-grant', session: 's3', grant: local })).toMatchObject({ ok: false, error: expect.stringMatching(/no such exec grant/) });
      // The server cannot make a grant up, nor pass bundles of its own.
      expect(await ask({ op: 'apply-grant', session: 's3', grant: 'made-up' })).toMatchObject({ ok: false, error: expect.stringMatching(/no such exec grant/) });
      expect(await viaSocket(ahead, url)).toBe(200);
      expect(await ask({ op: 'apply-grant', session: 'absent', grant: all })).toMatchObject({ ok: false, error: expect.stringMatching(/no listener/), code: 'no_listener' });
      expect(await ask({ op: 'close-listener', session: 's3' })).toEqual({ ok: true });
    } finally {
      target.close();
    }
  });

  it('refuses every other process, whatever it asks, and keeps serving its peer', async () => {
    const attempts = [
      { op: 'secret-put', name: 'planted', value: Buffer.from('x').toString('base64') },
      { op: 'open-listener', session: 'evil', socketPath: join(backend.home, 'run', 'evil.sock') },
      { op: 'secret-list' },
    ];
    // Another process of the same user: what the attack run used.
    for (const request of attempts) {
      const answer = runClient(request);
      expect(answer).toEqual({ ok: false, error: 'refused: only the Tagbox server may use this socket', code: 'forbidden' });
    }
    if (process.getuid!() === 0) {
      // And another user altogether (the sandbox's, here): it cannot even reach the socket, or is refused.
      const answer = runClient({ op: 'ping' }, ['runuser', '-u', 'tagbox-sandbox', '--']) as Partial<ControlResponse> & { error?: string };
      expect(answer.ok).not.toBe(true);
      expect(answer.error).toMatch(/EACCES|ENOENT|refused/);
    }
    expect(await ask({ op: 'secret-metadata', name: 'planted' })).toEqual({ ok: true, metadata: null });
    expect(await ask({ op: 'close-listener', session: 'evil' })).toMatchObject({ ok: false });
    expect(await ask({ op: 'ping' })).toMatchObject({ ok: true });
    expect(stderr).toMatch(/refused a process that is not the server/);
  });

  it('grants bundles to root and its own user only, and says what is wrong with a bundle file', async () => {
    const bad = await askGrant(grantSocket, { file: 'team.yaml', text: 'bundles:\n  - name: x\n    domains: ["*"]\n', bundle: [] });
    expect(bad).toMatchObject({ ok: false, exitCode: 2, error: expect.stringMatching(/^team\.yaml/) });
    const unknown = await askGrant(grantSocket, { file: 'team.yaml', text: 'bundles:\n  - name: x\n    domains: [a.example]\n', bundle: ['y'] });
    expect(unknown).toMatchObject({ ok: false, exitCode: 2, error: expect.stringMatching(/no bundle named "y"/) });
    if (process.getuid!() !== 0) return; // another uid to attack with needs root
    // A home left open by mistake: the socket is reachable by anyone; the peer check must still refuse.
    const opened = [backend.home, join(backend.home, 'run'), grantSocket].map((path) => ({ path, mode: statSync(path).mode & 0o7777 }));
    for (const { path, mode } of opened) chmodSync(path, mode | 0o007);
    try {
      const answer = runClient({ file: 'x.yaml', text: 'bundles:\n  - name: x\n    domains: [evil.example]\n', bundle: [] }, ['runuser', '-u', 'nobody', '--'], grantSocket);
      expect(answer).toMatchObject({ ok: false, error: expect.stringMatching(/refused: only root and the user Tagbox runs as/) });
    } finally {
      for (const { path, mode } of opened) chmodSync(path, mode);
    }
    // The log line is written a moment later (pino's destination is asynchronous).
    for (let i = 0; i < 40 && !/exec grant socket: refused/.test(stderr); i++) await sleep(50);
    expect(stderr).toMatch(/exec grant socket: refused/);
  });

  /** One request from a separate process (optionally through a wrapper such as runuser); its answer, if any. */
  function runClient(request: unknown, wrapper: string[] = [], socketPath = control): unknown {
    const script = `const s = require('node:net').createConnection(${JSON.stringify(socketPath)});
      let b = ''; s.on('connect', () => s.write(${JSON.stringify(`${JSON.stringify(request)}\n`)}));
      s.on('data', (c) => { b += c; }); s.on('close', () => { process.stdout.write(b); }); s.on('error', (e) => process.stdout.write(JSON.stringify({ error: e.code })));`;
    const argv = [...wrapper, process.execPath, '-e', script];
    const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 10_000 });
    const line = r.stdout.trim().split('\n')[0];
    return line ? JSON.parse(line) : undefined;
  }
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

async function until(fn: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(50);
  }
}

