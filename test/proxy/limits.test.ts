import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProxyListener } from '../../src/proxy/agent-proxy.js';
import { clientCap } from '../../src/proxy/client-caps.js';
import { connectionBudget, parseOpenFilesLimit } from '../../src/proxy/fd-budget.js';
import { REPO_ROOT, TAGBOX_BIN } from '../helpers/cli.js';
import { DEFAULT_BUNDLES, policyOf, rawExchange, sleep, startHarness, statusOf, tlsThroughConnect, type Harness } from './harness.js';

/**
 * One client must not starve the others. The attack of the report: a flood of
 * CONNECTs, each followed by one byte and then nothing (TLS never finished),
 * filled the global tunnel cap; every session got 503 for minutes, even after
 * the flooder left, because stalled sockets were paused and never noticed the
 * close. Here a flooder session opens hundreds of stalled tunnels and idle
 * connections; another session must still be served at once, and the
 * flooder's slots must come back as soon as it disconnects — with the
 * handshake and idle timeouts far away, so only close detection can do it.
 */
const LIMITS = {
  maxTunnels: 400,
  maxTunnelsPerSession: 100,
  maxConnections: 800,
  maxConnectionsPerSession: 200,
  // Far away on purpose: freeing slots must not depend on them.
  handshakeTimeoutMs: 60_000,
  headersTimeoutMs: 60_000,
};

let h: Harness;
let sockDir: string;
let flood: ProxyListener;
let victim: ProxyListener;
const floodSock = () => join(sockDir, 'flood.sock');
const victimSock = () => join(sockDir, 'victim.sock');

beforeAll(async () => {
  h = await startHarness({ limits: LIMITS });
  sockDir = mkdtempSync(join(tmpdir(), 'tagbox-limits-'));
  flood = await h.proxy.listen({ socketPath: floodSock() }, { session: 'flooder', policy: policyOf(DEFAULT_BUNDLES) });
  victim = await h.proxy.listen({ socketPath: victimSock() }, { session: 'victim', policy: policyOf(DEFAULT_BUNDLES) });
});
afterAll(async () => {
  await flood?.close();
  await victim?.close();
  await h?.close();
  rmSync(sockDir, { recursive: true, force: true });
});

/** Opens a connection, sends `data`, and resolves with the first answer (or '' if closed without one). */
function openAndSend(where: { path: string } | { port: number; localAddress?: string }, data: string | Buffer): Promise<{ socket: Socket; answer: string }> {
  return new Promise((resolve) => {
    const socket = 'path' in where ? netConnect({ path: where.path }) : netConnect({ host: '127.0.0.1', port: where.port, ...(where.localAddress ? { localAddress: where.localAddress } : {}) });
    let answer = '';
    const done = () => resolve({ socket, answer });
    socket.once('data', (d: Buffer) => {
      answer = d.toString('latin1');
      done();
    });
    socket.on('error', done);
    socket.once('close', done);
    socket.write(data);
  });
}

async function waitFor(what: () => boolean, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!what() && Date.now() < deadline) await sleep(25);
  return what();
}

async function victimServed(): Promise<void> {
  const r = await tlsThroughConnect(
    { path: victimSock() },
    { target: 'echo.test:443', servername: 'echo.test', ca: h.deployCa.certPem, request: 'GET /victim HTTP/1.1\r\nHost: echo.test\r\nConnection: close\r\n\r\n' },
  );
  expect(r.connectStatus).toBe(200);
  expect(statusOf(r.response)).toBe(200);
}

describe('a flooder session cannot starve another', () => {
  it('hundreds of stalled tunnels (CONNECT + one byte): capped per session, the victim is served, and a disconnect frees them at once', async () => {
    const sockets: Socket[] = [];
    const answers: number[] = [];
    // Half send the first byte of a TLS record, half the first byte of an HTTP request; none ever finishes.
    for (let i = 0; i < 300; i++) {
      const first = i % 2 ? Buffer.from([0x16]) : Buffer.from('G');
      const { socket, answer } = await openAndSend({ path: floodSock() }, 'CONNECT echo.test:443 HTTP/1.1\r\nHost: echo.test:443\r\n\r\n');
      answers.push(statusOf(answer));
      if (statusOf(answer) === 200) socket.write(first);
      sockets.push(socket);
    }
    expect(answers.filter((s) => s === 200)).toHaveLength(LIMITS.maxTunnelsPerSession);
    expect(answers.filter((s) => s === 503)).toHaveLength(300 - LIMITS.maxTunnelsPerSession);
    const during = h.proxy.usage();
    expect(during.tunnels).toBe(LIMITS.maxTunnelsPerSession);

    // Another session is served at once, tunnels and plain requests alike.
    await victimServed();
    const plain = await rawExchange({ path: victimSock() }, 'GET http://echo.test/plain HTTP/1.1\r\nHost: echo.test\r\nConnection: close\r\n\r\n');
    expect(statusOf(plain)).toBe(200);

    // The flooder leaves: every slot comes back, long before any timeout.
    for (const s of sockets) s.destroy();
    expect(await waitFor(() => h.proxy.usage().tunnels === 0)).toBe(true);
    expect(await waitFor(() => h.proxy.usage().connections === 0)).toBe(true);
    // And the flooder's own session can work again.
    const again = await tlsThroughConnect({ path: floodSock() }, { target: 'echo.test:443', servername: 'echo.test', ca: h.deployCa.certPem, request: 'GET /again HTTP/1.1\r\nHost: echo.test\r\nConnection: close\r\n\r\n' });
    expect(statusOf(again.response)).toBe(200);
  });

  it('half-open stalled tunnels (the client sends FIN and nothing else) are freed at once', async () => {
    const sockets: Socket[] = [];
    for (let i = 0; i < 50; i++) {
      const { socket, answer } = await openAndSend({ path: floodSock() }, 'CONNECT echo.test:443 HTTP/1.1\r\nHost: echo.test:443\r\n\r\n');
      expect(statusOf(answer)).toBe(200);
      if (i % 2) socket.end(Buffer.from([0x16]));
      else socket.end();
      sockets.push(socket);
    }
    expect(await waitFor(() => h.proxy.usage().tunnels === 0)).toBe(true);
    for (const s of sockets) s.destroy();
    await victimServed();
  });

  it('hundreds of idle connections: capped per session with a clean 503; the victim is served; a disconnect frees them at once', async () => {
    const sockets: Socket[] = [];
    for (let i = 0; i < 260; i++) {
      const socket = netConnect({ path: floodSock() });
      await new Promise<void>((r) => socket.once('connect', () => r()));
      socket.on('error', () => undefined);
      sockets.push(socket);
    }
    expect(await waitFor(() => h.proxy.usage().connections === LIMITS.maxConnectionsPerSession)).toBe(true);
    // One more from the flooder: refused cleanly, with a reason.
    const refused = await rawExchange({ path: floodSock() }, 'GET http://echo.test/ HTTP/1.1\r\nHost: echo.test\r\n\r\n');
    expect(statusOf(refused)).toBe(503);
    expect(refused).toContain('too many open connections for this session (200)');
    await victimServed();
    for (const s of sockets) s.destroy();
    expect(await waitFor(() => h.proxy.usage().connections === 0)).toBe(true);
    const ok = await rawExchange({ path: floodSock() }, 'GET http://echo.test/ok HTTP/1.1\r\nHost: echo.test\r\nConnection: close\r\n\r\n');
    expect(statusOf(ok)).toBe(200);
  });

  it('on a TCP listener each remote address is its own client: a flood from 127.0.0.2 leaves 127.0.0.1 served', async () => {
    const sockets: Socket[] = [];
    for (let i = 0; i < 150; i++) {
      const { socket, answer } = await openAndSend({ port: h.port, localAddress: '127.0.0.2' }, 'CONNECT echo.test:443 HTTP/1.1\r\nHost: echo.test:443\r\n\r\n');
      if (statusOf(answer) === 200) socket.write(Buffer.from([0x16]));
      sockets.push(socket);
    }
    const flooder = Object.entries(h.proxy.usage().clients).find(([k]) => k.endsWith('/127.0.0.2'));
    expect(flooder?.[1].tunnels).toBe(LIMITS.maxTunnelsPerSession);
    await h.expectServing();
    for (const s of sockets) s.destroy();
    expect(await waitFor(() => h.proxy.usage().tunnels === 0)).toBe(true);
  });
});

describe('the handshake deadline', () => {
  it('a tunnel that never finishes TLS, or never sends a request, is closed by the proxy within the deadline', async () => {
    const quick = await startHarness({ limits: { handshakeTimeoutMs: 800, headersTimeoutMs: 800 } });
    try {
      const sockets: Socket[] = [];
      const closed: boolean[] = [];
      for (let i = 0; i < 20; i++) {
        const { socket, answer } = await openAndSend({ port: quick.port }, 'CONNECT echo.test:443 HTTP/1.1\r\nHost: echo.test:443\r\n\r\n');
        expect(statusOf(answer)).toBe(200);
        // Nothing at all, one TLS byte, or one byte of plain HTTP.
        if (i % 3 === 1) socket.write(Buffer.from([0x16]));
        if (i % 3 === 2) socket.write('GET / HT');
        closed.push(false);
        socket.once('close', () => (closed[i] = true));
        sockets.push(socket);
      }
      expect(await waitFor(() => closed.every(Boolean), 6000)).toBe(true);
      // The proxy counts a tunnel gone on its own side's close, which can come a moment after the client's.
      expect(await waitFor(() => quick.proxy.usage().tunnels === 0, 2000)).toBe(true);
      await quick.expectServing();
    } finally {
      await quick.close();
    }
  });
});

describe('caps and file descriptors, pure', () => {
  it('a client never holds more than a quarter of a global cap', () => {
    expect(clientCap(128, 1024)).toBe(128);
    expect(clientCap(500, 1024)).toBe(256);
    expect(clientCap(128, 100)).toBe(25);
    expect(clientCap(128, 2)).toBe(1);
  });

  it('reads the soft open-files limit from /proc/self/limits and keeps two descriptors per connection plus the reserve', () => {
    const text = 'Limit                     Soft Limit           Hard Limit           Units\nMax processes             96364                96364                processes\nMax open files            1024                 4096                 files\n';
    expect(parseOpenFilesLimit(text)).toBe(1024);
    expect(parseOpenFilesLimit(text.replace('1024 ', 'unlimited'))).toBeUndefined();
    expect(parseOpenFilesLimit('garbage')).toBeUndefined();
    expect(connectionBudget(1024, 256)).toBe(384);
    expect(connectionBudget(100, 256)).toBe(1);
    expect(connectionBudget(undefined, 256)).toBe(Number.POSITIVE_INFINITY);
  });

  it("the proxy's global connection cap is within this process's descriptor budget", async () => {
    const { openFilesLimit } = await import('../../src/proxy/fd-budget.js');
    const limit = openFilesLimit();
    expect(h.proxy.usage().limits.maxConnections).toBe(Math.min(LIMITS.maxConnections, connectionBudget(limit, 256)));
  });
});


const hasPrlimit = spawnSync('prlimit', ['--version']).status === 0;

describe.runIf(hasPrlimit)('file-descriptor headroom, in a real `tagbox proxy` process', () => {
  it('under RLIMIT_NOFILE 384 it caps client connections below the limit, refuses the rest with 503, never runs out of descriptors, and serves again after', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tagbox-fd-'));
    const bundles = join(dir, 'bundles.yaml');
    writeFileSync(bundles, 'bundles:\n  - name: b\n    domains: [echo.test]\n');
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TAGBOX_')));
    // 384 descriptors, 224 kept free: (384 - 224) / 2 = 80 client connections; a quarter of that per address.
    // (Not lower: Node's module loader opens the CLI's modules in parallel at start.)
    const child = spawn('prlimit', ['--nofile=384:384', process.execPath, TAGBOX_BIN, 'proxy', '--bundles', bundles, '--listen', '127.0.0.1:0'], {
      cwd: REPO_ROOT,
      env: { ...base, TAGBOX_HOME: join(dir, 'home'), TAGBOX_PROXY_FD_RESERVE: '224' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const sockets: Socket[] = [];
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
          if (m) resolve(Number(m[1]));
        });
        child.once('exit', (code) => reject(new Error(`tagbox proxy exited ${code}: ${stderr}`)));
      });
      // 8 source addresses x 30 idle connections = 240 attempts, one address at a time.
      const attempt = (address: string) => {
        const socket = netConnect({ host: '127.0.0.1', port, localAddress: address });
        socket.on('error', () => undefined);
        sockets.push(socket);
        return new Promise<string>((resolve) => {
          let got = '';
          socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
          socket.once('close', () => resolve(got || 'closed'));
          // Accepted connections stay silent (they are waiting for a request).
          setTimeout(() => resolve(got || 'open'), 300);
        });
      };
      const results: string[] = [];
      for (let a = 2; a < 10; a++) results.push(...(await Promise.all(Array.from({ length: 30 }, () => attempt(`127.0.0.${a}`)))));
      const open = results.filter((r) => r === 'open').length;
      const refused = results.filter((r) => statusOf(r) === 503);
      expect(open).toBe(80);
      expect(refused.length).toBe(240 - 80);
      expect(refused.some((r) => r.includes('too many open connections (80)'))).toBe(true);
      expect(refused.some((r) => r.includes('too many open connections for this session (20)'))).toBe(true);
      // Still alive and refusing cleanly, not crashing or resetting.
      expect(child.exitCode).toBeNull();
      for (const s of sockets) s.destroy();
      await sleep(300);
      const served = await rawExchange({ port }, 'GET http://evil.test/ HTTP/1.1\r\nHost: evil.test\r\nConnection: close\r\n\r\n');
      expect(statusOf(served)).toBe(403);
      expect(stderr).not.toMatch(/EMFILE/);
    } finally {
      for (const s of sockets) s.destroy();
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
