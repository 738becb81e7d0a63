import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostLayout, type HostLayout } from '../../src/sandbox/host-layout.js';
import { detectLimitMechanism } from '../../src/sandbox/host-support.js';
import { detectSandboxIdentity } from '../../src/sandbox/identity.js';
import { REPO_ROOT, TAGBOX_BIN, runTagbox } from '../helpers/cli.js';
import { hostProcessesMatching } from '../sandbox/helpers.js';

/**
 * Issue 9, item 8: a `tagbox exec` that is told to stop (SIGTERM, SIGINT,
 * SIGHUP) tears everything down before it exits — the sandbox's processes, its
 * directory (with its argv), its cgroups and the proxy socket; and one that is
 * killed outright (SIGKILL) has what it left reaped by the next start.
 */
const mechanism = detectLimitMechanism();
let dir: string;
let home: string;
let layout: HostLayout;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tagbox-exec-teardown-'));
  home = join(dir, 'home');
  layout = hostLayout(home, detectSandboxIdentity());
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function sandboxIds(): string[] {
  return existsSync(layout.sandboxes) ? readdirSync(layout.sandboxes).filter((name) => /^[0-9a-f]{16}$/.test(name)) : [];
}

function execSockets(): string[] {
  return existsSync(layout.sockets) ? readdirSync(layout.sockets).filter((name) => name.startsWith('exec-')) : [];
}

function cgroupDirs(id: string): string[] {
  if (mechanism.kind === 'cgroup2') return [join(mechanism.root, 'tagbox', id)];
  if (mechanism.kind === 'cgroup1') return [join(mechanism.memory, 'tagbox', id), join(mechanism.pids, 'tagbox', id)];
  return [];
}

/** Starts `tagbox exec` on a command that says "ready" and then sleeps; resolves once it is running. */
async function startSleeper(marker: string) {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TAGBOX_')));
  const child = spawn(process.execPath, [TAGBOX_BIN, 'exec', '--', '/bin/sh', '-c', `echo ready; exec sleep ${marker}`], {
    cwd: REPO_ROOT,
    env: { ...base, TAGBOX_HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => c.toString('utf8').includes('ready') && resolve());
    void exited.then(() => reject(new Error(`tagbox exec ended before the command ran: ${stderr}`)));
  });
  return { child, exited, stderr: () => stderr };
}

describe('tagbox exec, stopped by a signal', () => {
  for (const [signal, status] of [['SIGTERM', 143], ['SIGINT', 130], ['SIGHUP', 129]] as const) {
    it(`on ${signal} stops the command, removes the sandbox, its cgroups and its socket, then exits ${status}`, async () => {
      const marker = `${30 + Math.floor(Math.random() * 1000)}.${Date.now() % 100000}`;
      const { child, exited, stderr } = await startSleeper(marker);
      const [id] = sandboxIds();
      expect(id).toBeDefined();
      expect(hostProcessesMatching(`sleep ${marker}`).length).toBeGreaterThan(0);
      expect(execSockets().length).toBe(1);
      const present = cgroupDirs(id!).filter((d) => existsSync(d));
      expect(present.length).toBe(cgroupDirs(id!).length);

      child.kill(signal);
      const { code } = await exited;
      expect(code, stderr()).toBe(status);
      // Gone by the time tagbox exec exited: nothing to wait for.
      expect(sandboxIds()).not.toContain(id);
      for (const d of cgroupDirs(id!)) expect(existsSync(d), d).toBe(false);
      expect(execSockets()).toEqual([]);
      expect(hostProcessesMatching(`sleep ${marker}`)).toEqual([]);
    });
  }
});

describe('tagbox exec, killed outright', () => {
  it('leaves state that the next start reaps: the sandbox directory, its cgroups, its socket', async () => {
    const marker = `${40 + Math.floor(Math.random() * 1000)}.${Date.now() % 100000}`;
    const { child, exited } = await startSleeper(marker);
    const [id] = sandboxIds();
    child.kill('SIGKILL');
    await exited;
    // bubblewrap dies with its parent, and the sandbox with bubblewrap.
    for (let i = 0; i < 50 && hostProcessesMatching(`sleep ${marker}`).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(hostProcessesMatching(`sleep ${marker}`)).toEqual([]);
    expect(sandboxIds()).toContain(id);
    expect(execSockets().length).toBe(1);

    const next = await runTagbox(['exec', '--', 'true'], { env: { TAGBOX_HOME: home } });
    expect(next.code, next.stderr).toBe(0);
    expect(sandboxIds()).toEqual([]);
    for (const d of cgroupDirs(id!)) expect(existsSync(d), d).toBe(false);
    expect(execSockets()).toEqual([]);
  });
});
