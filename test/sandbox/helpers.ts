import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBubblewrapProvider, runInSandbox } from '../../src/sandbox/index.js';
import type { CollectedResult, ExecRequest, LimitMechanism, Sandbox, SandboxLimits, SandboxProvider } from '../../src/sandbox/index.js';

export const FAKE_CA = `-----BEGIN CERTIFICATE-----
MIIBszCCAVmgAwIBAgIUdGFnYm94LXRlc3QtY2EtZmFrZTAKBggqhkjOPQQDAjAA
-----END CERTIFICATE-----`;

/**
 * A stand-in for the Agent Proxy on a Unix socket: every plain request gets
 * 200 and a marker naming this proxy; CONNECT gets 403, as a blocked host would.
 */
export async function startFakeProxy(path: string, marker: string): Promise<Server> {
  const server = createServer((req, res) => {
    res.setHeader('X-Tagbox-Decision', 'allowlist');
    res.end(`${marker} ${req.method} ${req.url}\n`);
  });
  server.on('connect', (_req, socket) => {
    socket.end('HTTP/1.1 403 Forbidden\r\nX-Tagbox-Decision: blocked\r\n\r\n');
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  // The sandbox may be a host uid of its own; its directory keeps everyone else out.
  chmodSync(path, 0o666);
  return server;
}

export interface Fixture {
  home: string;
  provider: SandboxProvider;
  proxySocket: string;
  marker: string;
  server: Server;
  create(limits?: Partial<SandboxLimits>): Promise<Sandbox>;
  close(): Promise<void>;
}

export async function fixture(options: { limitMechanism?: LimitMechanism; identity?: 'auto' | 'shared' } = {}): Promise<Fixture> {
  const root = mkdtempSync(join(tmpdir(), 'tagbox-sandbox-test-'));
  const home = join(root, 'home');
  const marker = `proxy-marker-${Math.random().toString(36).slice(2)}`;
  const provider = await createBubblewrapProvider({ home, ...options });
  const proxySocket = provider.proxySocketPath(marker);
  const server = await startFakeProxy(proxySocket, marker);
  const live: Sandbox[] = [];
  return {
    home,
    provider,
    proxySocket,
    marker,
    server,
    create: async (limits) => {
      const sandbox = await provider.create({ proxySocket, caCertPem: FAKE_CA, ...(limits ? { limits } : {}) });
      live.push(sandbox);
      return sandbox;
    },
    close: async () => {
      await Promise.all(live.map((sandbox) => provider.release(sandbox)));
      await new Promise((resolve) => server.close(resolve));
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Runs a shell script in the sandbox and collects its output. */
export function sh(f: Fixture, sandbox: Sandbox, script: string, request: Partial<ExecRequest> = {}): Promise<CollectedResult> {
  return runInSandbox(f.provider, sandbox, { argv: ['/bin/sh', '-c', script], ...request });
}

/** Host pids whose command line contains `needle`. */
export function hostProcessesMatching(needle: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmdline.includes(needle)) found.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

/** Host pids of every process of a (bubblewrap) sandbox: its first process and all its descendants. */
export function sandboxProcesses(sandbox: Sandbox): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // exited meanwhile
    }
  }
  const found: number[] = [];
  const queue = [(sandbox as unknown as { initPid: number }).initPid];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    found.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return found;
}
