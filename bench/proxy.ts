/**
 * npm run bench:proxy — the Agent Proxy against direct HTTPS and squid.
 *
 * One run, one load generator (bench/proxy-load.ts, its own process: undici,
 * HTTPS, keep-alive, 8 connections), one upstream (bench/proxy-upstream.ts,
 * its own process: a minimal node https server answering a small body), all on
 * loopback. Cases:
 *   direct        the generator straight to the upstream
 *   allowlist     through Tagbox, intercepted (TLS terminated with a leaf, decided, forwarded)
 *   credential    through Tagbox, intercepted and injected from a real vault
 *   passthrough   through Tagbox, tunnelled unopened
 *   squid         through Debian's squid as a plain CONNECT tunnel (installed with apt-get if missing)
 * Then the first request to a new host (leaf minted) against a cached one.
 * Every loop is bounded in count and time. Prints requests/s, p50, p99, ratios.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { enableAuditCheckpoints } from '../src/audit/checkpoints.js';
import { AuditLog } from '../src/audit/log.js';
import { nextLine, runNode } from './node-children.js';
import { parseBundleFile } from '../src/policy/bundle-file.js';
import { compilePolicy } from '../src/policy/compile.js';
import { AgentProxy } from '../src/proxy/agent-proxy.js';
import { AuditWriter } from '../src/proxy/audit-writer.js';
import { parseConnectTo } from '../src/proxy/connect-to.js';
import { openControlStore } from '../src/store/database.js';
import { createCertificateAuthority, issueServerCertificate } from '../src/tls/certificates.js';
import { initializeVault } from '../src/vault/bootstrap.js';
import { MasterKey } from '../src/vault/master-key.js';
import { Opener } from '../src/vault/private/opener.js';
import { createCredentialResolver } from '../src/vault/private/resolver.js';
import { createTokenHttpClient } from '../src/vault/private/token-http.js';
import { Sealer } from '../src/vault/sealer.js';
import { openVaultStore } from '../src/vault/store.js';

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 8);
const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 5000);
const WARMUP_MS = 1000;
const MAX_REQUESTS = 2_000_000;
const FIRST_N = 20;

interface LoadResult {
  requests: number;
  errors: number;
  firstError?: string;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
}

const dir = mkdtempSync(join(tmpdir(), 'tagbox-bench-proxy-'));
chmodSync(dir, 0o755);
const children: ChildProcess[] = [];
const cleanup = () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
};
process.on('exit', cleanup);

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** BENCH_CASES=credential,allowlist runs only those (for profiling); direct always runs. */
const ONLY = process.env.BENCH_CASES?.split(',');

async function generate(spec: Record<string, unknown>, name?: string): Promise<LoadResult | string> {
  if (ONLY && name && !ONLY.includes(name)) return 'not selected (BENCH_CASES)';
  const child = runNode(children, 'proxy-load.ts', [JSON.stringify({ connections: CONNECTIONS, durationMs: DURATION_MS, warmupMs: WARMUP_MS, maxRequests: MAX_REQUESTS, ...spec })]);
  child.stdin!.end();
  return JSON.parse(await nextLine(child, DURATION_MS + WARMUP_MS + 60_000)) as LoadResult;
}

/** Squid as a plain CONNECT tunnel on loopback; installed with apt-get if missing. */
async function startSquid(port: number, hostsFile: string): Promise<ChildProcess | string> {
  const bin = ['/usr/sbin/squid', '/usr/bin/squid'].find((p) => existsSync(p));
  if (!bin) {
    process.stdout.write('squid is missing: apt-get install -y squid ...\n');
    const r = spawnSync('sh', ['-c', 'apt-get install -y squid || (apt-get update && apt-get install -y squid)'], { stdio: 'ignore', timeout: 300_000 });
    if (r.status !== 0 || !['/usr/sbin/squid', '/usr/bin/squid'].some((p) => existsSync(p))) return 'squid could not be installed (apt-get failed)';
    return startSquid(port, hostsFile);
  }
  const squidDir = join(dir, 'squid');
  spawnSync('mkdir', ['-p', squidDir]);
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
      'shutdown_lifetime 0 seconds',
      '',
    ].join('\n'),
  );
  const child = spawn(bin, ['-N', '-f', conf], { stdio: 'ignore' });
  children.push(child);
  // Ready when it accepts a connection.
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = createServer();
      void s;
      import('node:net').then(({ connect }) => {
        const c = connect({ host: '127.0.0.1', port }, () => {
          c.destroy();
          resolve(true);
        });
        c.on('error', () => resolve(false));
      });
    });
    if (ok) return child;
    if (child.exitCode !== null) return `squid exited with ${child.exitCode} (see ${join(squidDir, 'cache.log')})`;
    await new Promise((r) => setTimeout(r, 100));
  }
  return 'squid did not start listening within 15 s';
}

const fmt = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '-');

async function main(): Promise<void> {
  // PKI: an upstream CA the generator and the proxy trust; the deployment CA for interception.
  const upstreamCa = await createCertificateAuthority({ commonName: 'Bench Upstream CA', validDays: 1 });
  const newHosts = Array.from({ length: FIRST_N }, (_, i) => `new${i}-${Date.now().toString(36)}.bench.test`);
  const names = ['bench.test', 'api.bench.test', 'pass.bench.test', ...newHosts];
  const leaf = await issueServerCertificate(upstreamCa, [...names, '*.bench.test']);
  const deployCa = await createCertificateAuthority({ commonName: 'Bench Deployment CA', validDays: 1 });
  const files = {
    upstreamCa: join(dir, 'upstream-ca.pem'),
    cert: join(dir, 'leaf.pem'),
    key: join(dir, 'leaf.key'),
    both: join(dir, 'both-cas.pem'),
    hosts: join(dir, 'hosts'),
  };
  writeFileSync(files.upstreamCa, upstreamCa.certPem);
  writeFileSync(files.cert, leaf.certPem);
  writeFileSync(files.key, leaf.keyPem);
  writeFileSync(files.both, `${upstreamCa.certPem}\n${deployCa.certPem}`);
  writeFileSync(files.hosts, `${names.map((n) => `127.0.0.1 ${n}`).join('\n')}\n`);
  chmodSync(files.hosts, 0o644);

  // The real vault, with the credential sealed as `tagbox secret set` would.
  const secret = `bench-token-${Date.now()}`;
  const vaultStore = await openVaultStore({ dialect: 'sqlite', file: join(dir, 'vault.db') });
  const masterKey = MasterKey.generate({ kind: 'env', variable: 'BENCH_MASTER_KEY' });
  await initializeVault(vaultStore, () => masterKey);
  await (await Sealer.connect(vaultStore)).put('bench-token', Buffer.from(secret));

  const upstream = runNode(children, 'proxy-upstream.ts', [files.cert, files.key, `Bearer ${secret}`]);
  const upstreamPort = (JSON.parse(await nextLine(upstream, 20_000)) as { port: number }).port;

  // Tagbox: the audit log on SQLite (group commit), as `tagbox proxy` runs it.
  const store = await openControlStore({ dialect: 'sqlite', file: join(dir, 'tagbox.db') });
  // Signed audit checkpoints, as every CLI-opened store has them (BENCH_NO_CHECKPOINTS=1 to compare without).
  if (!process.env.BENCH_NO_CHECKPOINTS) enableAuditCheckpoints(store, { keyFile: join(dir, 'audit-signing.key'), checkpointFile: join(dir, 'audit', 'checkpoint.json') });
  // BENCH_NO_AUDIT=1 (diagnosis only): audit events are dropped, to see what the audit write costs.
  const audit = process.env.BENCH_NO_AUDIT ? ({ appendMany: async () => [], append: async () => ({}) } as unknown as AuditLog) : new AuditLog(store);
  // As `tagbox proxy` runs it: one group-committing writer for egress and credential-use events.
  const writer = new AuditWriter(audit);
  const opener = await Opener.unlock(vaultStore, masterKey, { audit: writer });
  const resolver = createCredentialResolver({ opener, http: createTokenHttpClient({}) });
  const proxy = new AgentProxy({
    ca: deployCa,
    audit: writer,
    resolver,
    // Through Tagbox the names are used on 443 (passthrough and host patterns
    // default to ports 443 and 80), mapped to the upstream like --connect-to.
    upstream: { connectTo: parseConnectTo(names.map((n) => `${n}:443:127.0.0.1:${upstreamPort}`)), extraCaPem: upstreamCa.certPem },
    passthrough: ['pass.bench.test'],
  });
  const bundles = parseBundleFile(
    `bundles:
  - name: bench
    domains: [bench.test, pass.bench.test, "*.bench.test"]
    connections:
      - name: api
        secret: bench-token
        allowedWebsites: [api.bench.test]
        inject:
          header: Authorization
          value: "Bearer {{secret}}"
`,
    'bench-bundles.yaml',
  ).bundles;
  const listener = await proxy.listen({ host: '127.0.0.1', port: 0 }, { policy: compilePolicy(bundles) });
  const tagbox = `http://127.0.0.1:${listener.port}`;

  const squidPort = await freePort();
  const squid = await startSquid(squidPort, files.hosts);

  // Direct and squid dial the upstream port (squid resolves names with its hosts_file).
  const url = (host: string) => `https://${host}:${upstreamPort}/`;
  const viaTagbox = (host: string) => `https://${host}/`;
  const stats = async () => {
    upstream.stdin!.write('stats\n');
    return JSON.parse(await nextLine(upstream, 5000)) as { requests: number; withCredential: number; connections: number };
  };

  const results: Record<string, LoadResult | string> = {};
  process.stdout.write(`proxy bench: ${CONNECTIONS} connections, keep-alive, HTTPS, ${DURATION_MS / 1000} s per case after ${WARMUP_MS / 1000} s warm-up\n`);
  results.direct = await generate({ mode: 'load', url: url('bench.test'), caFile: files.upstreamCa, dialAddress: '127.0.0.1' });
  results.allowlist = await generate({ mode: 'load', url: viaTagbox('bench.test'), proxy: tagbox, caFile: files.both }, 'allowlist');
  const before = await stats();
  results.credential = await generate({ mode: 'load', url: viaTagbox('api.bench.test'), proxy: tagbox, caFile: files.both }, 'credential');
  const after = await stats();
  results.passthrough = await generate({ mode: 'load', url: viaTagbox('pass.bench.test'), proxy: tagbox, caFile: files.both }, 'passthrough');
  if (process.env.BENCH_DEBUG) {
    const counts: Record<string, number> = {};
    for await (const e of audit.query({ type: 'egress' })) counts[`${e.method} ${e.host}`] = (counts[`${e.method} ${e.host}`] ?? 0) + 1;
    console.log(counts);
  }
  results.squid = typeof squid === 'string' ? squid : await generate({ mode: 'load', url: url('bench.test'), proxy: `http://127.0.0.1:${squidPort}`, caFile: files.both }, 'squid');

  // First request to a new host: CONNECT + TLS (leaf minted) + request, on a fresh connection each.
  const firstNew = JSON.parse(
    await nextLine(
      (() => {
        const c = runNode(children, 'proxy-load.ts', [JSON.stringify({ mode: 'first', urls: newHosts.map(viaTagbox), url: '', proxy: tagbox, caFile: files.both, connections: 1, durationMs: 0, warmupMs: 0, maxRequests: 0 })]);
        c.stdin!.end();
        return c;
      })(),
      60_000,
    ),
  ) as { n: number; p50: number; mean: number; max: number };
  const firstCached = JSON.parse(
    await nextLine(
      (() => {
        const c = runNode(children, 'proxy-load.ts', [JSON.stringify({ mode: 'first', urls: newHosts.map(() => viaTagbox('bench.test')), url: '', proxy: tagbox, caFile: files.both, connections: 1, durationMs: 0, warmupMs: 0, maxRequests: 0 })]);
        c.stdin!.end();
        return c;
      })(),
      60_000,
    ),
  ) as { n: number; p50: number; mean: number; max: number };
  // The mint alone, in process: a leaf for a name never seen.
  const mintTimes: number[] = [];
  for (let i = 0; i < FIRST_N; i++) {
    const t = process.hrtime.bigint();
    await proxy.leaves.get(`mint${i}-${Date.now().toString(36)}.bench.test`);
    mintTimes.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  mintTimes.sort((a, b) => a - b);

  // Report.
  const direct = results.direct as LoadResult;
  const loaded = (r: LoadResult | string | undefined) => (typeof r === 'string' ? undefined : r);
  const sq = typeof results.squid === 'string' ? undefined : results.squid;
  process.stdout.write(`\n${'case'.padEnd(13)}${'req/s'.padStart(10)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'errors'.padStart(8)}${'vs direct'.padStart(11)}${'vs squid'.padStart(10)}${'+p50 ms'.padStart(9)}\n`);
  for (const [name, r] of Object.entries(results)) {
    if (typeof r === 'string') {
      process.stdout.write(`${name.padEnd(13)}skipped: ${r}\n`);
      continue;
    }
    process.stdout.write(
      `${name.padEnd(13)}${fmt(r.rps).padStart(10)}${fmt(r.p50, 3).padStart(9)}${fmt(r.p99, 3).padStart(9)}${String(r.errors).padStart(8)}${fmt(r.rps / direct.rps, 2).padStart(11)}${(sq ? fmt(r.rps / sq.rps, 2) : '-').padStart(10)}${fmt(r.p50 - direct.p50, 3).padStart(9)}\n`,
    );
    if (r.firstError) process.stdout.write(`  first error: ${r.firstError}\n`);
  }
  const injected = after.withCredential - before.withCredential;
  const credentialRequests = after.requests - before.requests;
  process.stdout.write(`\ncredential case: ${injected} of ${credentialRequests} upstream requests carried the injected credential, over ${after.connections - before.connections} new upstream connections\n`);
  process.stdout.write(
    `first request to a new host (fresh connection, CONNECT+TLS+request, leaf minted): p50 ${fmt(firstNew.p50, 2)} ms, mean ${fmt(firstNew.mean, 2)} ms, max ${fmt(firstNew.max, 2)} ms (n=${firstNew.n})\n`,
  );
  process.stdout.write(`same, to a cached host (leaf and upstream pool warm): p50 ${fmt(firstCached.p50, 2)} ms, mean ${fmt(firstCached.mean, 2)} ms (n=${firstCached.n})\n`);
  process.stdout.write(`leaf mint alone (in process): p50 ${fmt(mintTimes[Math.floor(mintTimes.length / 2)]!, 2)} ms, max ${fmt(mintTimes.at(-1)!, 2)} ms\n`);
  const cred = loaded(results.credential);
  const pass = loaded(results.passthrough);
  if (sq && cred && pass) {
    process.stdout.write(
      `\ntargets: credential >= squid: ${cred.rps >= sq.rps ? 'yes' : 'NO'} (${fmt(cred.rps / sq.rps, 2)}x); passthrough >= 1.2x squid: ${pass.rps >= 1.2 * sq.rps ? 'yes' : 'NO'} (${fmt(pass.rps / sq.rps, 2)}x); ` +
        `credential +p50 < 0.5 ms: ${cred.p50 - direct.p50 < 0.5 ? 'yes' : 'NO'} (${fmt(cred.p50 - direct.p50, 3)} ms); first request to a new host < 5 ms: ${firstNew.p50 < 5 ? 'yes' : 'NO'} (${fmt(firstNew.p50, 2)} ms)\n`,
    );
  }

  await proxy.close();
  await opener.close();
  await vaultStore.close();
  await store.close();
  upstream.stdin!.end();
  if (typeof squid !== 'string') squid.kill('SIGTERM');
  cleanup();
  rmSync(dir, { recursive: true, force: true });
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    cleanup();
    process.exit(1);
  },
);
