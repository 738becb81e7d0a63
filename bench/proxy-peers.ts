/**
 * The proxy bench's peers, each in its own process on loopback: Debian's
 * squid as a plain CONNECT tunnel, and mitmproxy (mitmdump) intercepting with
 * the bench's local CA and an addon that injects the Authorization header.
 * Both are installed with apt-get when missing; a peer that cannot be had is
 * a sentence saying why, and the bench goes on without it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../test/helpers/ports.js';


/** Resolves once 127.0.0.1:port accepts a connection; a sentence when the child exits or time runs out. */
export async function waitListening(child: ChildProcess, port: number, what: string, timeoutMs: number, log: () => string): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect({ host: '127.0.0.1', port }, () => {
        c.destroy();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
    if (ok) return undefined;
    if (child.exitCode !== null || child.signalCode !== null) return `${what} exited (${child.exitCode ?? child.signalCode}): ${log().trim().split('\n').slice(-3).join(' | ')}`;
    await sleep(100);
  }
  return `${what} did not listen on ${port} within ${timeoutMs / 1000} s`;
}

/** The binary at one of `paths`, installing `pkg` with apt-get if none is there; a sentence when that fails. */
function ensureInstalled(pkg: string, paths: string[]): string | { bin: string } {
  const found = () => paths.find((p) => existsSync(p));
  if (found()) return { bin: found()! };
  process.stdout.write(`${pkg} is missing: apt-get install -y ${pkg} ...\n`);
  const r = spawnSync('sh', ['-c', `apt-get install -y ${pkg} || (apt-get update && apt-get install -y ${pkg})`], { encoding: 'utf8', timeout: 300_000 });
  if (found()) return { bin: found()! };
  const why = r.error ? r.error.message : `exit ${r.status}: ${(r.stderr ?? '').trim().split('\n').slice(-2).join(' | ')}`;
  return `${pkg} could not be installed (apt-get install -y ${pkg}: ${why})`;
}

/** A child's last output, kept for a failure's message. */
function keepOutput(child: ChildProcess): () => string {
  let out = '';
  const keep = (c: Buffer) => (out = (out + c.toString('utf8')).slice(-8192));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => out;
}

export interface Peer {
  child: ChildProcess;
  port: number;
}

/** Squid as a plain CONNECT tunnel on loopback; names resolve through `hostsFile`. */
export async function startSquid(children: ChildProcess[], dir: string, hostsFile: string): Promise<Peer | string> {
  const installed = ensureInstalled('squid', ['/usr/sbin/squid', '/usr/bin/squid']);
  if (typeof installed === 'string') return installed;
  const port = await freePort();
  const squidDir = join(dir, 'squid');
  mkdirSync(squidDir, { recursive: true });
  chmodSync(squidDir, 0o777);
  const conf = join(squidDir, 'squid.conf');
  writeFileSync(
    conf,
    [
      `http_port 127.0.0.1:${port}`,
      'acl CONNECT method CONNECT',
      'http_access allow localhost',
      'http_access deny all',
      'cache deny all',
      'cache_mem 0 MB',
      'access_log none',
      `cache_log ${join(squidDir, 'cache.log')}`,
      `pid_filename ${join(squidDir, 'squid.pid')}`,
      `coredump_dir ${squidDir}`,
      `hosts_file ${hostsFile}`,
      'dns_v4_first on',
      'workers 1',
      // 1,000 idle tunnels take two descriptors each.
      'max_filedescriptors 8192',
      'shutdown_lifetime 0 seconds',
      '',
    ].join('\n'),
  );
  const child = spawn(installed.bin, ['-N', '-f', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const log = keepOutput(child);
  const failed = await waitListening(child, port, 'squid', 15_000, log);
  return failed ?? { child, port };
}

/** The mitmproxy addon: every connection goes to the upstream (curl's --connect-to), every request gets the credential. */
const MITM_ADDON = `import os
from mitmproxy import http

UPSTREAM = ("127.0.0.1", int(os.environ["BENCH_UPSTREAM_PORT"]))
VALUE = os.environ["BENCH_INJECT"]


def http_connect(flow: http.HTTPFlow) -> None:
    flow.request.host, flow.request.port = UPSTREAM


def requestheaders(flow: http.HTTPFlow) -> None:
    host_header = flow.request.host_header
    flow.request.host, flow.request.port = UPSTREAM
    flow.request.host_header = host_header
    flow.request.headers["Authorization"] = VALUE
`;

/** mitmdump intercepting with the local CA (cert+key as mitmproxy-ca.pem), trusting the upstream CA, injecting `inject`. */
export async function startMitmproxy(
  children: ChildProcess[],
  dir: string,
  options: { caCertPem: string; caKeyPem: string; upstreamCaFile: string; upstreamPort: number; inject: string },
): Promise<Peer | string> {
  const installed = ensureInstalled('mitmproxy', ['/usr/bin/mitmdump', '/usr/local/bin/mitmdump']);
  if (typeof installed === 'string') return installed;
  const port = await freePort();
  const confdir = join(dir, 'mitmproxy');
  mkdirSync(confdir, { recursive: true, mode: 0o700 });
  writeFileSync(join(confdir, 'mitmproxy-ca.pem'), `${options.caKeyPem.trim()}\n${options.caCertPem.trim()}\n`, { mode: 0o600 });
  const addon = join(confdir, 'bench_inject.py');
  writeFileSync(addon, MITM_ADDON);
  const child = spawn(
    installed.bin,
    ['--listen-host', '127.0.0.1', '--listen-port', String(port), '--set', `confdir=${confdir}`, '--set', `ssl_verify_upstream_trusted_ca=${options.upstreamCaFile}`, '-s', addon, '-q'],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BENCH_UPSTREAM_PORT: String(options.upstreamPort), BENCH_INJECT: options.inject } },
  );
  children.push(child);
  const log = keepOutput(child);
  const failed = await waitListening(child, port, 'mitmdump', 30_000, log);
  return failed ?? { child, port };
}
