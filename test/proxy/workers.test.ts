import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestCa, type TestCa } from '../fixtures/ca.js';
import { startEchoUpstream, type EchoUpstream } from '../fixtures/echo-upstream.js';
import { BACKENDS, createTestBackend, type TestBackend } from '../helpers/backends.js';
import { runTagbox } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';
import { curl, DEFAULT_BUNDLES } from './harness.js';
import { spawnEchoProxy, type RunningProxy } from './proxy-cli.js';

/** The bundle file without echo.test: what a reload must take away from every worker. */
const WITHOUT_ECHO = DEFAULT_BUNDLES.replace('      - echo.test\n', '');

/**
 * `tagbox proxy --workers 2`: two processes behind one listener (connections
 * handed out in turn). One policy in all of them, also after SIGHUP and in a
 * worker that replaced one killed; one audit chain however the two interleave.
 */
describe.each(BACKENDS)('tagbox proxy with workers (%s)', (name) => {
  let backend: TestBackend;
  let upstreamCa: TestCa;
  let echo: EchoUpstream;
  let proxy: RunningProxy;
  let bundles: string;
  let via: string[];
  let metricsPort: number;
  const secret = `worker-secret-${Date.now()}`;

  beforeAll(async () => {
    backend = await createTestBackend(name);
    upstreamCa = await createTestCa();
    echo = await startEchoUpstream({ ca: upstreamCa, names: ['echo.test', 'api.echo.test'] });
    expect((await runTagbox(['secret', 'set', 'echo-token'], { env: backend.env, input: secret })).code).toBe(0);
    bundles = join(backend.home, 'bundles.yaml');
    writeFileSync(bundles, DEFAULT_BUNDLES);
    metricsPort = await freePort();
    proxy = await spawnEchoProxy(bundles, echo, upstreamCa.certFile, backend.env, ['--workers', '2', '--metrics', `127.0.0.1:${metricsPort}`]);
    const caFile = join(backend.home, 'deploy-ca.pem');
    writeFileSync(caFile, (await runTagbox(['ca', 'cert'], { env: backend.env })).stdout);
    via = ['-x', `http://127.0.0.1:${proxy.port}`, '--cacert', caFile];
  }, 60_000);
  afterAll(async () => {
    proxy?.child.kill('SIGTERM');
    await proxy?.exited;
    await echo?.close();
    await backend?.cleanup();
  });

  const get = (url: string) => curl(url, via, backend.home);
  /** `n` requests in a row, each on a connection of its own (so the workers take them in turn). */
  const statuses = async (url: string, n: number) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const r = await get(url);
      out.push(r.connectStatus === 403 ? 403 : r.status);
    }
    return out;
  };

  it('serves from two worker processes, one chain in the audit log, the metrics summed', async () => {
    expect(workersOf(proxy.child.pid!)).toHaveLength(2);
    const before = echo.received.length;
    // In parallel, so that both workers append at once.
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => get(i % 2 ? 'https://api.echo.test/repos/acme/w' : 'https://echo.test/w')));
    expect(results.map((r) => r.status)).toEqual(Array(12).fill(200));
    const injected = echo.received.slice(before).filter((r) => r.headers.authorization === `Bearer ${secret}`);
    expect(injected).toHaveLength(6);
    const exported = await runTagbox(['audit', 'export'], { env: backend.env });
    const events = exported.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.filter((e) => e.type === 'egress' && (e.path === '/w' || e.path === '/repos/acme/w'))).toHaveLength(12);
    expect(events.filter((e) => e.type === 'credential-use' && e.secret === 'echo-token').length).toBeGreaterThanOrEqual(6);
    const verify = await runTagbox(['audit', 'verify'], { env: backend.env });
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const decided = (outcome: string) => Number(new RegExp(`^tagbox_proxy_decisions_total\\{outcome="${outcome}"\\} (\\d+)`, 'm').exec(metrics)?.[1]);
    expect(decided('credential')).toBeGreaterThanOrEqual(6);
    expect(decided('allowlist')).toBeGreaterThanOrEqual(6);
    expect(metrics).toMatch(/^tagbox_proxy_leaf_cache\{stat="size"\} \d+/m);
  });

  it('reloads the policy in every worker on SIGHUP, and keeps it on a bad edit', async () => {
    expect(await statuses('https://echo.test/r', 4)).toEqual([200, 200, 200, 200]);
    writeFileSync(bundles, WITHOUT_ECHO);
    proxy.child.kill('SIGHUP');
    await until(async () => (await get('https://echo.test/r')).connectStatus === 403);
    // Every worker: connections go to them in turn.
    expect(await statuses('https://echo.test/r', 6)).toEqual(Array(6).fill(403));
    expect(await statuses('https://api.echo.test/repos/acme/r', 4)).toEqual(Array(4).fill(200));
    writeFileSync(bundles, 'bundles:\n  - name: x\n    domains: ["*"]\n');
    proxy.child.kill('SIGHUP');
    await sleep(500);
    expect(await statuses('https://api.echo.test/repos/acme/r', 4)).toEqual(Array(4).fill(200));
    expect(proxy.stderr()).toMatch(/the bundle file is invalid; keeping the current policy/);
  });

  it('replaces a killed worker, which decides on the current policy (not what the file says since)', async () => {
    // In force: WITHOUT_ECHO (the bad edit was refused). The file now says DEFAULT_BUNDLES, unannounced.
    writeFileSync(bundles, DEFAULT_BUNDLES);
    const [victim] = workersOf(proxy.child.pid!);
    process.kill(victim!, 'SIGKILL');
    await until(async () => {
      const now = workersOf(proxy.child.pid!);
      return now.length === 2 && !now.includes(victim!);
    });
    await sleep(300);
    expect(await statuses('https://echo.test/k', 6)).toEqual(Array(6).fill(403));
    expect(await statuses('https://api.echo.test/repos/acme/k', 4)).toEqual(Array(4).fill(200));
    const verify = await runTagbox(['audit', 'verify'], { env: backend.env });
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });
});

describe('tagbox proxy --workers', () => {
  /** A fresh sqlite home, the echo upstream, `tagbox proxy` with `extraArgs` in front of it, and curl through it; all torn down after `fn`. */
  async function withProxy(extraArgs: string[], fn: (p: { proxy: RunningProxy; bundles: string; echo: EchoUpstream; get: (url: string) => ReturnType<typeof curl> }) => Promise<void>) {
    const backend = await createTestBackend('sqlite');
    const upstreamCa = await createTestCa();
    const echo = await startEchoUpstream({ ca: upstreamCa, names: ['echo.test', 'api.echo.test'] });
    const bundles = join(backend.home, 'bundles.yaml');
    writeFileSync(bundles, DEFAULT_BUNDLES);
    const proxy = await spawnEchoProxy(bundles, echo, upstreamCa.certFile, backend.env, extraArgs);
    const caFile = join(backend.home, 'deploy-ca.pem');
    writeFileSync(caFile, (await runTagbox(['ca', 'cert'], { env: backend.env })).stdout);
    try {
      await fn({ proxy, bundles, echo, get: (url) => curl(url, ['-x', `http://127.0.0.1:${proxy.port}`, '--cacert', caFile], backend.home) });
    } finally {
      const left = workersOf(proxy.child.pid!);
      proxy.child.kill('SIGKILL');
      for (const pid of left) process.kill(pid, 'SIGKILL');
      await echo.close();
      await backend.cleanup();
    }
  }

  it('reloads the policy on SIGHUP in one process too', () =>
    withProxy([], async ({ proxy, bundles, get }) => {
      expect(workersOf(proxy.child.pid!)).toHaveLength(0);
      expect((await get('https://echo.test/one')).status).toBe(200);
      writeFileSync(bundles, WITHOUT_ECHO);
      proxy.child.kill('SIGHUP');
      await until(async () => (await get('https://echo.test/one')).connectStatus === 403);
      expect(proxy.stderr()).toMatch(/SIGHUP: policy reloaded/);
    }));

  it('leaves no worker serving when the primary is killed: nothing is sent that the primary cannot audit', () =>
    withProxy(['--workers', '2'], async ({ proxy, echo, get }) => {
      const workers = workersOf(proxy.child.pid!);
      expect(workers).toHaveLength(2);
      proxy.child.kill('SIGKILL');
      await until(async () => workers.every((pid) => !alive(pid)));
      const before = echo.received.length;
      expect((await get('https://echo.test/after')).status).toBe(0);
      expect(echo.received.length).toBe(before);
    }));

  it('refuses a bad count, naming the flag', async () => {
    const r = await runTagbox(['proxy', '--bundles', '/dev/null', '--listen', '127.0.0.1:1', '--workers', 'many']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--workers: expected a whole number from 1 to 64, got "many"/);
  });
});

/** The pids of a process's children (the primary's workers). */
function workersOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(entry));
    } catch {
      // gone
    }
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
}

async function until(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(100);
  }
}
