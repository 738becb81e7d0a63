import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBubblewrapProvider, isSandboxUnavailable, runOnce, SandboxManager } from '../../src/sandbox/index.js';
import type { Sandbox } from '../../src/sandbox/index.js';
import { FAKE_CA, fixture, hostProcessesMatching, sh } from './helpers.js';
import type { Fixture } from './helpers.js';

let f: Fixture;
let sandbox: Sandbox;

beforeAll(async () => {
  f = await fixture();
  sandbox = await f.create();
});
afterAll(async () => f?.close());

describe('a live sandbox', () => {
  it('runs as an unprivileged user in /workspace with only the proxy environment', async () => {
    const result = await sh(f, sandbox, 'id -u; id -un; pwd; env | sort');
    expect(result.exitCode).toBe(0);
    const [uid, name, cwd, ...env] = result.stdout.trim().split('\n');
    expect([uid, name, cwd]).toEqual(['1000', 'agent', '/workspace']);
    const vars = Object.fromEntries(env.map((line) => [line.split('=')[0], line.slice(line.indexOf('=') + 1)]));
    for (const key of ['HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'all_proxy']) {
      expect(vars[key]).toBe('http://127.0.0.1:3128');
    }
    expect(vars.NO_PROXY).toBe('localhost,127.0.0.1');
    expect(vars.no_proxy).toBe('localhost,127.0.0.1');
    for (const key of ['SSL_CERT_FILE', 'NODE_EXTRA_CA_CERTS', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'GIT_SSL_CAINFO']) {
      expect(vars[key]).toBe('/etc/ssl/certs/ca-certificates.crt');
    }
    // exactly the sandbox's own environment: nothing inherited from the host
    expect(Object.keys(vars).sort()).toEqual([
      'ALL_PROXY', 'CURL_CA_BUNDLE', 'GIT_SSL_CAINFO', 'HOME', 'HTTPS_PROXY', 'HTTP_PROXY', 'LANG', 'LOGNAME',
      'NODE_EXTRA_CA_CERTS', 'NO_PROXY', 'PATH', 'PWD', 'REQUESTS_CA_BUNDLE', 'SHELL', 'SSL_CERT_FILE', 'TMPDIR', 'USER',
      'all_proxy', 'http_proxy', 'https_proxy', 'no_proxy',
    ]);
  });

  it('trusts the deployment CA next to the system roots', async () => {
    const result = await sh(f, sandbox, 'grep -c "BEGIN CERTIFICATE" /etc/ssl/certs/ca-certificates.crt; grep -q "MIIBszCCAVmgAwIBAgIUdGFnYm94" /etc/ssl/certs/ca-certificates.crt && echo has-ca');
    expect(Number(result.stdout.split('\n')[0])).toBeGreaterThan(1);
    expect(result.stdout).toContain('has-ca');
  });

  it('reaches the proxy through the relay: HTTP is answered by it, CONNECT refused by it', async () => {
    const http = await sh(f, sandbox, 'curl -sS http://example.com/hello');
    expect(http.stdout).toBe(`${f.marker} GET http://example.com/hello\n`);
    const https = await sh(f, sandbox, 'curl -sS https://example.com/ 2>&1; echo "exit $?"');
    expect(https.stdout).toMatch(/403/);
    expect(https.stdout).not.toMatch(/exit 0/);
    const python = await sh(f, sandbox, `python3 -c "import urllib.request; print(urllib.request.urlopen('http://example.org/py').read().decode())"`);
    expect(python.stdout).toContain(`${f.marker} GET http://example.org/py`);
    const node = await sh(f, sandbox, `node -e "fetch('http://example.net/').then(r=>r.text()).then(console.log, e=>console.log('fetch-failed', e.cause?.code))"`);
    // Node's fetch ignores HTTP_PROXY: it simply cannot connect (no DNS, no route).
    expect(node.stdout).toContain('fetch-failed');
  });

  it('keeps /workspace between commands, and takes cwd, env and stdin', async () => {
    await sh(f, sandbox, 'mkdir -p /workspace/dir && echo kept > /workspace/dir/file');
    const result = await sh(f, sandbox, 'pwd; cat file; echo "$GREETING"; cat', { cwd: '/workspace/dir', env: { GREETING: "it's a 'quoted' $value" }, stdin: 'from stdin\n' });
    expect(result.stdout).toBe("/workspace/dir\nkept\nit's a 'quoted' $value\nfrom stdin\n");
    const streamed = await sh(f, sandbox, 'wc -c', { stdin: Readable.from([Buffer.alloc(100_000, 1), Buffer.alloc(100_000, 2)]) });
    expect(streamed.stdout.trim()).toBe('200000');
  });

  it('passes argv through untouched', async () => {
    const argv = ['printf', '%s|', "a'b", 'c d', '$HOME', '"x"', '\\n', '', 'é'];
    const result = await runOnce(f.provider, { proxySocket: f.proxySocket, caCertPem: FAKE_CA }, { argv });
    expect(result.stdout).toBe("a'b|c d|$HOME|\"x\"|\\n||é|");
  });

  it('runs commands concurrently and reports each exit status', async () => {
    const results = await Promise.all([0, 1, 2, 3, 4, 5, 6].map((n) => sh(f, sandbox, `echo ${n}; exit ${n}`)));
    expect(results.map((r) => [r.exitCode, r.stdout])).toEqual([0, 1, 2, 3, 4, 5, 6].map((n) => [n, `${n}\n`]));
  });

  it('applies back-pressure: a command stalls while its output is not read', async () => {
    const handle = f.provider.exec(sandbox, { argv: ['head', '-c', '4000000', '/dev/zero'] });
    handle.stderr.resume();
    let settled = false;
    void handle.result.then(() => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(settled).toBe(false);
    let bytes = 0;
    for await (const chunk of handle.stdout) bytes += (chunk as Buffer).length;
    expect(bytes).toBe(4_000_000);
    expect((await handle.result).exitCode).toBe(0);
  });

  it('cancels a command through its AbortSignal, killing what it started', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const result = await sh(f, sandbox, 'sleep 31.25 & sleep 31.5', { signal: controller.signal });
    expect(result.cancelled).toBe(true);
    expect(result.stderr).toContain('cancelled');
    expect(hostProcessesMatching('sleep 31.25')).toEqual([]);
    expect(hostProcessesMatching('sleep 31.5')).toEqual([]);
  });

  it('reports its limits and how each is enforced', () => {
    expect(sandbox.info.limits.memoryBytes).toBe(1024 * 1024 * 1024);
    expect(Object.keys(sandbox.info.enforcement).sort()).toEqual(['cpu time', 'disk', 'memory', 'output', 'processes', 'wall clock']);
  });
});

describe('release', () => {
  it('kills every process and removes the host directory', async () => {
    const own = await f.create();
    const { initPid, monitorPid, dir } = own as unknown as { initPid: number; monitorPid: number; dir: string };
    expect(existsSync(dir)).toBe(true);
    expect(existsSync(`/proc/${initPid}`)).toBe(true);
    await f.provider.release(own);
    expect(own.alive).toBe(false);
    expect(existsSync(dir)).toBe(false);
    expect(existsSync(`/proc/${initPid}`)).toBe(false);
    expect(existsSync(`/proc/${monitorPid}`)).toBe(false);
    expect(existsSync(join(f.home, 'sandboxes', own.id))).toBe(false);
    expect(() => f.provider.exec(own, { argv: ['true'] })).toThrow(/no longer running/);
  });
});

describe('SandboxManager', () => {
  it('keeps a sandbox across execs, releases it when idle and rebuilds it on the next exec', async () => {
    const events: string[] = [];
    const manager = new SandboxManager({
      provider: f.provider,
      idleMs: 500,
      spec: () => ({ proxySocket: f.proxySocket, caCertPem: FAKE_CA }),
      onEvent: (event) => events.push(event.kind),
    });
    const run = async (script: string) => {
      const handle = await manager.exec('thread-1', { argv: ['/bin/sh', '-c', script] });
      let out = '';
      handle.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      handle.stderr.resume();
      await handle.result;
      return out;
    };
    await run('echo one > /workspace/notes');
    const first = await manager.get('thread-1');
    expect(await run('cat /workspace/notes')).toBe('one\n');
    expect(await manager.get('thread-1')).toBe(first);
    const dir = (first as unknown as { dir: string }).dir;
    await new Promise((resolve) => setTimeout(resolve, 1200));
    expect(await manager.get('thread-1')).toBeUndefined();
    expect(first?.alive).toBe(false);
    expect(existsSync(dir)).toBe(false);
    expect(await run('cat /workspace/notes 2>&1 || echo gone')).toContain('gone');
    const second = await manager.get('thread-1');
    expect(second?.id).not.toBe(first?.id);
    expect(events).toEqual(['created', 'released', 'created']);
    await manager.releaseAll();
    expect(second?.alive).toBe(false);
  });
});

describe('setup failures', () => {
  it('fails with sandbox_unavailable when bubblewrap is missing', async () => {
    const saved = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      const error = await createBubblewrapProvider({ home: f.home }).catch((e: unknown) => e);
      expect(isSandboxUnavailable(error)).toBe(true);
      expect(String(error)).toMatch(/bubblewrap/);
    } finally {
      process.env.PATH = saved;
    }
  });

  it('fails closed when the proxy socket does not exist', async () => {
    const error = await f.provider.create({ proxySocket: join(f.home, 'no-such.sock'), caCertPem: FAKE_CA }).catch((e: unknown) => e);
    expect(isSandboxUnavailable(error)).toBe(true);
  });
});
