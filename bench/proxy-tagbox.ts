/**
 * Tagbox for the proxy bench, as users run it: a fresh TAGBOX_HOME whose
 * deployment CA is the bench's local CA (so every intercepting proxy here
 * signs with the same key), a tagbox.yaml that raises the proxy's limits so
 * 64 connections and 1,000 idle tunnels from one address are not refused,
 * the credential sealed with `tagbox secret set`, then `tagbox proxy` as a
 * child process (from dist/: run `npm run build` first).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { listeningPort } from '../test/helpers/cli.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanEnv, REPO_ROOT, TAGBOX_BIN } from './tagbox-up.js';

export interface TagboxProxy {
  child: ChildProcess;
  port: number;
  home: string;
}

export interface TagboxProxyOptions {
  caCertPem: string;
  caKeyPem: string;
  upstreamCaFile: string;
  /** Names the proxy sends to the upstream (port 443 -> 127.0.0.1:upstreamPort). */
  hosts: string[];
  upstreamPort: number;
  /** The credential's value, sealed as bench-token; injected for api.bench.test. */
  secret: string;
  /** Tunnelled unopened. */
  passthrough: string[];
  /** `--workers` (default: the proxy's own, 1). */
  workers?: number;
}

const BUNDLES = `bundles:
  - name: bench
    domains: [bench.test, pass.bench.test, "*.bench.test"]
    connections:
      - name: api
        secret: bench-token
        allowedWebsites: [api.bench.test]
        inject:
          header: Authorization
          value: "Bearer {{secret}}"
`;

export async function startTagboxProxy(children: ChildProcess[], dir: string, options: TagboxProxyOptions): Promise<TagboxProxy> {
  const home = join(dir, 'tagbox-home');
  mkdirSync(join(home, 'ca'), { recursive: true, mode: 0o700 });
  writeFileSync(join(home, 'ca', 'ca.pem'), options.caCertPem, { mode: 0o644 });
  writeFileSync(join(home, 'ca', 'ca.key'), options.caKeyPem, { mode: 0o600 });
  writeFileSync(
    join(home, 'tagbox.yaml'),
    [
      'proxy:',
      `  passthrough: [${options.passthrough.map((h) => JSON.stringify(h)).join(', ')}]`,
      // Everything comes from 127.0.0.1, one "session": its caps are at most a quarter of the global ones.
      '  maxTunnels: 8192',
      '  maxTunnelsPerSession: 2048',
      '  maxConnections: 16384',
      '  maxConnectionsPerSession: 4096',
      '',
    ].join('\n'),
  );
  const bundles = join(dir, 'bench-bundles.yaml');
  writeFileSync(bundles, BUNDLES);
  const env = cleanEnv({ TAGBOX_HOME: home });

  const set = spawnSync(process.execPath, [TAGBOX_BIN, 'secret', 'set', 'bench-token'], { cwd: REPO_ROOT, env, input: options.secret, encoding: 'utf8', timeout: 60_000 });
  if (set.status !== 0) throw new Error(`tagbox secret set failed (${set.status}): ${set.stderr}`);

  const args = [TAGBOX_BIN, 'proxy', '--bundles', bundles, '--listen', '127.0.0.1:0', '--upstream-ca', options.upstreamCaFile, ...(options.workers ? ['--workers', String(options.workers)] : [])];
  for (const host of options.hosts) args.push('--connect-to', `${host}:443:127.0.0.1:${options.upstreamPort}`);
  // BENCH_PROFILE=DIR: the proxy writes a V8 CPU profile there when the bench ends (it is stopped with SIGTERM).
  const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
  const child = spawn(process.execPath, [...profile, ...args], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stderr!.on('data', (c: Buffer) => (out = (out + c.toString('utf8')).slice(-8192)));
  const port = await listeningPort(child, () => out, 60_000);
  child.stdout!.resume();
  return { child, port, home };
}
