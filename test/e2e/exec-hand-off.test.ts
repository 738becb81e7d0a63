import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { askGrant } from '../../src/cli/exec-hand-off.js';
import { encodeFrame, FRAME, FrameReader } from '../../src/server/exec-protocol.js';
import { createTestCa, type TestCa } from '../fixtures/ca.js';
import { ECHO_BUNDLES_YAML } from '../fixtures/echo-bundles.js';
import { startEchoUpstream, type EchoUpstream } from '../fixtures/echo-upstream.js';
import { REPO_ROOT, runTagbox, TAGBOX_BIN } from '../helpers/cli.js';
import { startUp, type RunningUp } from '../helpers/up.js';

const MASTER_KEY = randomBytes(32).toString('base64');

/**
 * `tagbox exec` handed to a running `tagbox up` (src/server/exec-service.ts):
 * the one-shot exec's contract (stdio, exit status, bundles, injection, audit)
 * kept through the real server, its real Agent Proxy child and real bubblewrap
 * sandboxes; and the socket attacked: another uid, garbage frames, a client
 * that dies mid-command.
 */
describe('tagbox exec handed to tagbox up', () => {
  let ca: TestCa;
  let echo: EchoUpstream;
  let dir: string;
  let home: string;
  let bundles: string;
  let up: RunningUp;
  const canary = `canary-${randomBytes(12).toString('hex')}`;
  const env = () => ({ TAGBOX_HOME: home, TAGBOX_MASTER_KEY: MASTER_KEY });
  const exec = (args: string[], input?: string) => runTagbox(['exec', ...args], { env: env(), ...(input !== undefined ? { input } : {}), timeoutMs: 60_000 });
  const events = async () => {
    const exported = await runTagbox(['audit', 'export'], { env: env() });
    expect(exported.code, exported.stderr).toBe(0);
    return exported.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  };
  /** The `sandbox create` event of the newest exec: which path ran it. */
  const lastCreate = async () => (await events()).filter((e) => e.type === 'sandbox' && e.action === 'create' && e.actor === 'cli').at(-1);

  beforeAll(async () => {
    ca = await createTestCa();
    echo = await startEchoUpstream({ ca });
    dir = mkdtempSync(join(tmpdir(), 'tagbox-hand-off-'));
    // Under privilege separation the proxy's user reads the CA file: a directory it can enter.
    chmodSync(dir, 0o755);
    home = join(dir, 'home');
    const caFile = join(dir, 'upstream-ca.pem');
    copyFileSync(ca.certFile, caFile);
    chmodSync(caFile, 0o644);
    bundles = join(dir, 'bundles.yaml');
    writeFileSync(bundles, ECHO_BUNDLES_YAML);
    const set = await runTagbox(['secret', 'set', 'gh-token'], { env: env(), input: canary });
    expect(set.code, set.stderr).toBe(0);
    const names = ['echo.test', 'api.echo.test', 'other.echo.test'];
    up = await startUp({
      ...env(),
      // The upstream mappings are the server's (its proxy's) settings: exec's own flags would make it run alone.
      TAGBOX_UPSTREAM_CONNECT_TO: names.map((n) => `${n}:443:127.0.0.1:${echo.httpsPort}`).join(','),
      TAGBOX_UPSTREAM_CA_FILE: caFile,
    });
  }, 120_000);
  afterAll(async () => {
    await up?.stop();
    await echo?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('passes stdin, stdout, stderr and the exit code through, and the server ran it', async () => {
    const r = await exec(['--', 'sh', '-c', 'pwd; cat; echo oops >&2; exit 3'], 'from stdin\n');
    expect(r.stderr).toBe('oops\n');
    expect(r.stdout).toBe('/workspace\nfrom stdin\n');
    expect(r.code).toBe(3);
    expect(await lastCreate()).toMatchObject({ via: 'tagbox up', command: 'sh', bundles: [] });
  });

  it('gives every command a fresh sandbox: nothing of the last one is left', async () => {
    expect((await exec(['--', 'sh', '-c', 'echo secret-ish > /workspace/left; echo x > /tmp/left'])).code).toBe(0);
    const r = await exec(['--', 'sh', '-c', 'ls -A /workspace /tmp']);
    expect(r.stdout).not.toContain('left');
  });

  it("injects the credential at the server's proxy, and the sandbox never sees it", async () => {
    const before = echo.received.length;
    const r = await exec([
      '--bundles', bundles, '--',
      'sh', '-c',
      `env; cat /proc/*/environ /proc/*/cmdline 2>/dev/null | tr '\\0' '\\n'; find /etc /run /tmp /workspace /home /dev/shm -type f -exec cat {} + 2>/dev/null; echo; echo @@SPLIT@@; curl -s https://api.echo.test/repos/acme/x`,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const [inside, response] = r.stdout.split('@@SPLIT@@\n');
    expect(inside).not.toContain(canary);
    expect(JSON.parse(response!).headers.authorization).toBe(`Bearer ${canary}`);
    expect(echo.received.length).toBe(before + 1);
    const create = await lastCreate();
    expect(create).toMatchObject({ via: 'tagbox up', bundles: ['eng', 'other'] });
    const all = await events();
    expect(JSON.stringify(all)).not.toContain(canary);
    expect(all.some((e) => e.type === 'egress' && e.session === create!.session && e.outcome === 'credential' && e.host === 'api.echo.test')).toBe(true);
  });

  it('uses only the bundles named, and a listener reaches nothing once its exec is over', async () => {
    const r = await exec(['--bundles', bundles, '--bundle', 'other', '--', 'sh', '-c', 'curl -s -o /dev/null -w "%{http_code} " https://other.echo.test/; curl -s -o /dev/null -w "%{http_connect}" https://echo.test/']);
    expect(r.stdout).toBe('200 403');
    // No bundles: the sandbox built ahead (behind an empty policy) stays at nothing, whatever ran before.
    const none = await exec(['--', 'sh', '-c', 'curl -s -o /dev/null -w "%{http_connect}" https://other.echo.test/; echo " $?"']);
    expect(none.stdout).toBe('403 56\n');
  });

  it('says what is wrong with a bundle file, naming it, with exit 2', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'bundles:\n  - name: x\n    domains: ["*"]\n');
    const r = await exec(['--bundles', bad, '--', 'true']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(bad);
    const unknown = await exec(['--bundles', bundles, '--bundle', 'nope', '--', 'true']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no bundle named "nope"/);
    const missing = await exec(['--bundles', join(dir, 'absent.yaml'), '--', 'true']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/absent\.yaml: cannot read bundle file/);
  });

  it('applies the limits asked for (a sandbox built for them)', async () => {
    const r = await exec(['--timeout', '1', '--', 'sleep', '20']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/time|limit/i);
    const out = await exec(['--output', '1', '--', 'sh', '-c', 'head -c 3000000 /dev/zero']);
    expect(out.stdout.length).toBeLessThanOrEqual(1024 * 1024);
  });

  it('runs on its own with --standalone', async () => {
    const r = await exec(['--standalone', '--', 'true']);
    expect(r.code).toBe(0);
    const create = await lastCreate();
    expect(create?.via).toBeUndefined();
  });

  it('stops the command on a signal, exits as a shell reports it, and audits the release', async () => {
    const child = spawn(process.execPath, [TAGBOX_BIN, 'exec', '--', 'sh', '-c', 'echo started; sleep 30'], { cwd: REPO_ROOT, env: { ...baseEnv(), ...env() }, stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((resolve) => child.stdout.on('data', (c: Buffer) => c.toString().includes('started') && resolve()));
    const started = Date.now();
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code).toBe(143);
    expect(Date.now() - started).toBeLessThan(10_000);
    const session = (await lastCreate())!.session;
    expect((await events()).some((e) => e.type === 'sandbox' && e.action === 'release' && e.session === session)).toBe(true);
  });

  it('stops the command when its client dies (kill -9)', async () => {
    const child = spawn(process.execPath, [TAGBOX_BIN, 'exec', '--', 'sh', '-c', 'echo started; sleep 60'], { cwd: REPO_ROOT, env: { ...baseEnv(), ...env() }, stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((resolve) => child.stdout.on('data', (c: Buffer) => c.toString().includes('started') && resolve()));
    const session = (await lastCreate())!.session;
    child.kill('SIGKILL');
    const end = Date.now() + 20_000;
    let released = false;
    while (!released && Date.now() < end) {
      released = (await events()).some((e) => e.type === 'sandbox' && e.action === 'release' && e.session === session);
      if (!released) await sleep(200);
    }
    expect(released).toBe(true);
  });

  it('refuses a peer that is neither root nor its own user, even when the socket lets it connect', async () => {
    if (process.getuid?.() !== 0) return; // needs another uid to attack with
    // A home left open by mistake: the directories and the socket let anyone reach it. The peer check must still say no.
    const socketPath = join(home, 'run', 'exec.sock');
    const opened = [home, join(home, 'run'), socketPath].map((path) => ({ path, mode: statSync(path).mode & 0o7777 }));
    for (const { path, mode } of opened) chmodSync(path, mode | 0o007);
    const before = (await events()).length;
    const script = `
      const net = require('node:net');
      const s = net.createConnection(${JSON.stringify(socketPath)});
      const req = Buffer.from(JSON.stringify({ argv: ['sh', '-c', 'echo pwned'] }));
      const head = Buffer.alloc(5); head[0] = 0x52; head.writeUInt32BE(req.length, 1);
      s.on('connect', () => s.write(Buffer.concat([head, req])));
      let out = Buffer.alloc(0);
      s.on('data', (c) => (out = Buffer.concat([out, c])));
      s.on('close', () => { process.stdout.write(out.toString('latin1')); });
      s.on('error', (e) => process.stdout.write('error ' + e.message));
    `;
    const r = await new Promise<string>((resolve) => {
      const child = spawn(process.execPath, ['-e', script], { uid: 65534, gid: 65534, stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString('latin1')));
      child.on('exit', () => resolve(out));
    });
    for (const { path, mode } of opened) chmodSync(path, mode);
    expect(r).toMatch(/refused: only root and the user Tagbox runs as/);
    expect(r).not.toContain('pwned');
    expect((await events()).slice(before).some((e) => e.type === 'sandbox' && e.action === 'create')).toBe(false);
  });

  it('closes on garbage and bad requests, and keeps serving others', async () => {
    const socketPath = join(home, 'run', 'exec.sock');
    const send = (bytes: Buffer) =>
      new Promise<Buffer>((resolve) => {
        const s = createConnection(socketPath);
        let out = Buffer.alloc(0);
        s.on('connect', () => s.write(bytes));
        s.on('data', (c: Buffer) => (out = Buffer.concat([out, c])));
        s.on('close', () => resolve(out));
        s.on('error', () => undefined);
      });
    const done = (bytes: Buffer) => {
      const frames = new FrameReader().push(bytes);
      const last = frames.at(-1);
      return last?.kind === FRAME.DONE ? (JSON.parse(last.payload.toString()) as { exitCode: number; error?: string }) : undefined;
    };
    // An unknown frame kind, an oversized length, a stdin frame before the request: closed without running anything.
    expect(done(await send(Buffer.from([0x7a, 0, 0, 0, 1, 0])))?.exitCode ?? 2).toBe(2);
    expect(done(await send(Buffer.from([FRAME.REQUEST, 0xff, 0xff, 0xff, 0xff])))?.exitCode ?? 2).toBe(2);
    expect(done(await send(encodeFrame(FRAME.STDIN, 'x')))?.exitCode ?? 2).toBe(2);
    const notJson = done(await send(encodeFrame(FRAME.REQUEST, '{argv')));
    expect(notJson).toMatchObject({ exitCode: 2, error: expect.stringMatching(/not JSON/) });
    const badShape = done(await send(encodeFrame(FRAME.REQUEST, JSON.stringify({ argv: [], extra: 1 }))));
    expect(badShape).toMatchObject({ exitCode: 2, error: expect.stringMatching(/argv|extra/) });
    // The server takes no bundles from a client (only a grant the client got from the proxy), nor a grant made up.
    const ownBundles = done(await send(encodeFrame(FRAME.REQUEST, JSON.stringify({ argv: ['true'], bundles: { file: 'x.yaml', text: 'bundles: []' } }))));
    expect(ownBundles).toMatchObject({ exitCode: 2, error: expect.stringMatching(/bundles/) });
    const madeUp = done(await send(encodeFrame(FRAME.REQUEST, JSON.stringify({ argv: ['true'], grant: 'made-up-grant' }))));
    expect(madeUp).toMatchObject({ exitCode: 2, error: expect.stringMatching(/no such exec grant/) });
    const r = await exec(['--', 'echo', 'still here']);
    expect(r.stdout).toBe('still here\n');
  });

  it('after the proxy restarts, builds another sandbox for the command (the one built ahead lost its listener)', async () => {
    process.kill(up.proxyPid, 'SIGKILL');
    // The supervisor starts another proxy; ready once its grant socket answers.
    const grantSocket = join(home, 'run', 'exec-grant.sock');
    const end = Date.now() + 30_000;
    for (;;) {
      const answer = await askGrant(grantSocket, { file: 'probe.yaml', text: 'bundles: []\n', bundle: [] });
      if (answer?.ok) break;
      if (Date.now() > end) throw new Error('the proxy did not come back');
      await sleep(200);
    }
    const r = await exec(['--bundles', bundles, '--bundle', 'other', '--', 'sh', '-c', 'curl -s -o /dev/null -w "%{http_code}" https://other.echo.test/']);
    expect(r.stdout, r.stderr).toBe('200');
    expect(await lastCreate()).toMatchObject({ via: 'tagbox up', bundles: ['other'] });
    expect(up.stderr() + up.stdout()).toMatch(/lost its listener; building another/);
  });

  it('leaves no sandbox behind but the one built ahead, and stops cleanly (also after the refused peer)', async () => {
    await sleep(1000);
    const sandboxes = readdirSync(join(home, 'sandboxes')).filter((d) => !d.startsWith('.'));
    expect(sandboxes.length).toBeLessThanOrEqual(1);
    // A connection the server left open (a refused one it never read to its end) once held its shutdown for good.
    expect(await up.stop()).toBe(0);
    expect(readdirSync(join(home, 'sandboxes')).filter((d) => !d.startsWith('.'))).toEqual([]);
  });
});

function baseEnv(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).filter(([k, v]) => !k.startsWith('TAGBOX_') && v !== undefined)) as Record<string, string>;
}
