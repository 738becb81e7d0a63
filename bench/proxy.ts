/**
 * npm run bench:proxy — the Agent Proxy against its peers, in one run.
 *
 * Every party is its own process on loopback: one load generator per
 * measurement (bench/proxy-load.ts: undici, HTTPS, keep-alive), one upstream
 * (bench/proxy-upstream.ts: node https, a small body), and the proxies:
 *   direct                the generator straight to the upstream (the baseline of added latency)
 *   squid                 Debian's squid as a plain CONNECT tunnel (the baseline of req/s)
 *   minimal intercept     bench/minimal-intercept.ts: raw tls, minimal parsing, kept-alive upstream — this runtime's ceiling
 *   mitmproxy             mitmdump intercepting with the same local CA, an addon injecting Authorization
 *   tagbox allowlist      `tagbox proxy` (the CLI, from dist/), intercepted, decided, audited, forwarded
 *   tagbox credential     the same, with the credential injected from a real vault
 *   tagbox passthrough    (only when BENCH_CASES names it) tunnelled unopened
 * At each connection count, ROUNDS rounds of every case (the order rotated
 * each round); the table shows medians. CPU per request is read from /proc
 * (utime+stime) around each measured window, for the proxy's process tree,
 * the generator and the upstream. Then memory per 1,000 idle tunnels (RSS
 * delta of the proxy's tree with TLS established), the first request to a
 * new host against a cached one, and minting a leaf alone.
 *
 * Knobs: BENCH_CONNECTIONS=1,8,64  BENCH_ROUNDS=3  BENCH_DURATION_MS=2500
 * BENCH_WARMUP_MS=1000  BENCH_CASES=squid,credential (direct always runs)
 * BENCH_IDLE_TUNNELS=1000 (0 skips)  BENCH_FIRST_N=60 (new hosts, each in turn with a cached one). Every loop is bounded in count and time;
 * every child is killed on exit.
 */
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LeafCache } from '../src/proxy/leaf-cache.js';
import { nextLine, runNode } from './node-children.js';
import { treePids } from './proc-cpu.js';
import { idleMemory, type IdleResult } from './proxy-idle.js';
import { startMitmproxy, startSquid, type Peer } from './proxy-peers.js';
import { idleTable, loadTable, type LoadResult, type Rounds } from './proxy-report.js';
import { setUpProxyBench } from './proxy-setup.js';
import { killChildren } from './proc-tree.js';

const LEVELS = (process.env.BENCH_CONNECTIONS ?? '1,8,64').split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 2500);
const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 1000);
const IDLE_TUNNELS = Number(process.env.BENCH_IDLE_TUNNELS ?? 1000);
const MAX_REQUESTS = 2_000_000;
const FIRST_N = Number(process.env.BENCH_FIRST_N ?? 60);
/** BENCH_CASES=credential,squid runs only those (for profiling); direct always runs. */
const ONLY = process.env.BENCH_CASES?.split(',');
const selected = (name: string) => name === 'direct' || (ONLY ? ONLY.includes(name) : name !== 'passthrough');

const LABELS = new Map([
  ['direct', 'direct'],
  ['squid', 'squid (tunnel)'],
  ['minimal', 'minimal intercept'],
  ['mitmproxy', 'mitmproxy (inject)'],
  ['allowlist', 'tagbox allowlist'],
  ['credential', 'tagbox credential'],
  ['passthrough', 'tagbox passthrough'],
]);

const dir = mkdtempSync(join(tmpdir(), 'tagbox-bench-proxy-'));
chmodSync(dir, 0o755);
const children: ChildProcess[] = [];
/** Every child and whatever it started, SIGKILLed. */
const cleanup = (): void => killChildren(children);
process.on('exit', cleanup);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

interface Case {
  name: string;
  url: string;
  proxy?: { port: number; pid: number };
  caFile: string;
  dialAddress?: string;
  /** The upstream must see the injected credential on every request. */
  injects: boolean;
}

async function generate(c: Case, connections: number, upstreamPid: number): Promise<LoadResult> {
  const spec = {
    mode: 'load',
    url: c.url,
    caFile: c.caFile,
    connections,
    durationMs: DURATION_MS,
    warmupMs: WARMUP_MS,
    maxRequests: MAX_REQUESTS,
    ...(c.proxy ? { proxy: `http://127.0.0.1:${c.proxy.port}` } : {}),
    ...(c.dialAddress ? { dialAddress: c.dialAddress } : {}),
    cpu: { proxy: c.proxy ? treePids(c.proxy.pid) : [], upstream: [upstreamPid] },
  };
  const child = runNode(children, 'proxy-load.ts', [JSON.stringify(spec)]);
  child.stdin!.end();
  return JSON.parse(await nextLine(child, DURATION_MS + WARMUP_MS + 60_000)) as LoadResult;
}

function firstRequests(urls: string[], proxyPort: number, caFile: string): Promise<{ n: number; p50: number; mean: number; max: number; times: number[] }> {
  const spec = { mode: 'first', urls, url: '', proxy: `http://127.0.0.1:${proxyPort}`, caFile, connections: 1, durationMs: 0, warmupMs: 0, maxRequests: 0 };
  const child = runNode(children, 'proxy-load.ts', [JSON.stringify(spec)]);
  child.stdin!.end();
  return nextLine(child, 120_000).then((line) => JSON.parse(line) as { n: number; p50: number; mean: number; max: number; times: number[] });
}

const fmt = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '-');

async function main(): Promise<void> {
  const t0 = Date.now();
  const newHosts = Array.from({ length: FIRST_N }, (_, i) => `new${i}-${Date.now().toString(36)}.bench.test`);
  const { files, localCa, inject, upstream, upstreamPort, upstreamStats, tagbox } = await setUpProxyBench(children, dir, newHosts);
  const minimalChild = runNode(children, 'minimal-intercept.ts', [
    JSON.stringify({ caCertFile: files.localCa, caKeyFile: files.localCaKey, upstreamCaFile: files.upstreamCa, toHost: '127.0.0.1', toPort: upstreamPort, inject }),
  ]);
  const minimal: Peer = { child: minimalChild, port: (JSON.parse(await nextLine(minimalChild, 20_000)) as { port: number }).port };
  const squid = selected('squid') ? await startSquid(children, dir, files.hosts) : 'not selected (BENCH_CASES)';
  const mitm = selected('mitmproxy')
    ? await startMitmproxy(children, dir, { caCertPem: localCa.certPem, caKeyPem: localCa.keyPem, upstreamCaFile: files.upstreamCa, upstreamPort, inject })
    : 'not selected (BENCH_CASES)';
  for (const [what, peer] of [['squid', squid], ['mitmproxy', mitm]] as const) if (typeof peer === 'string') process.stdout.write(`${what}: ${peer}; going on without it\n`);

  const via = (p: Peer) => ({ port: p.port, pid: p.child.pid! });
  const tagboxPeer = { port: tagbox.port, pid: tagbox.child.pid! };
  const direct = `https://bench.test:${upstreamPort}/`;
  const cases: Array<Case | { name: string; skipped: string }> = [
    { name: 'direct', url: direct, caFile: files.upstreamCa, dialAddress: '127.0.0.1', injects: false },
    // squid resolves the names with its hosts_file and dials the upstream's port.
    typeof squid === 'string' ? { name: 'squid', skipped: squid } : { name: 'squid', url: direct, proxy: via(squid), caFile: files.both, injects: false },
    // The intercepting proxies map HOST:443 to the upstream (--connect-to, or the addon).
    { name: 'minimal', url: 'https://api.bench.test/', proxy: via(minimal), caFile: files.both, injects: true },
    typeof mitm === 'string' ? { name: 'mitmproxy', skipped: mitm } : { name: 'mitmproxy', url: 'https://api.bench.test/', proxy: via(mitm), caFile: files.both, injects: true },
    { name: 'allowlist', url: 'https://bench.test/', proxy: tagboxPeer, caFile: files.both, injects: false },
    { name: 'credential', url: 'https://api.bench.test/', proxy: tagboxPeer, caFile: files.both, injects: true },
    { name: 'passthrough', url: 'https://pass.bench.test/', proxy: tagboxPeer, caFile: files.both, injects: false },
  ];
  const active = cases.filter((c) => selected(c.name));
  const labels = new Map(active.map((c) => [c.name, LABELS.get(c.name)!]));

  // Memory per 1,000 idle tunnels, TLS established (with the proxy's leaf where it intercepts); before the load, see proxy-idle.ts.
  const idle = new Map<string, IdleResult | string>();
  if (IDLE_TUNNELS > 0) {
    const idleCases: Array<[string, Peer | string | { port: number; pid: number }, string]> = [
      ['squid', squid, `bench.test:${upstreamPort}`],
      ['minimal', minimal, 'bench.test:443'],
      ['mitmproxy', mitm, 'bench.test:443'],
      ['allowlist', tagboxPeer, 'bench.test:443'],
    ];
    for (const [name, peer, target] of idleCases) {
      if (!selected(name)) continue;
      if (typeof peer === 'string') {
        idle.set(name, peer);
        continue;
      }
      const p = 'child' in peer ? via(peer) : peer;
      try {
        idle.set(name, await idleMemory(children, p.pid, { proxyPort: p.port, target, caFile: files.both, count: IDLE_TUNNELS }, async () => (await upstreamStats()).connections));
      } catch (error) {
        idle.set(name, `failed: ${(error as Error).message}`);
      }
    }
    process.stdout.write(`idle tunnels measured (${Math.round((Date.now() - t0) / 1000)} s)\n`);
  }

  process.stdout.write(
    `proxy bench: ${LEVELS.join(', ')} connections x ${ROUNDS} rounds, keep-alive HTTPS, ${DURATION_MS / 1000} s measured after ${WARMUP_MS / 1000} s warm-up per case; medians\n`,
  );
  const results = new Map<string, Map<number, Rounds>>(active.map((c) => [c.name, new Map()]));
  const injected = new Map<string, { requests: number; withCredential: number }>();
  for (const level of LEVELS) {
    for (let round = 0; round < ROUNDS; round++) {
      // Rotate the order each round, so no case always runs first (or right after another).
      const order = active.map((_, i) => active[(i + round) % active.length]!);
      for (const c of order) {
        const slot = results.get(c.name)!;
        if ('skipped' in c) {
          slot.set(level, c.skipped);
          continue;
        }
        const before = await upstreamStats();
        try {
          const r = await generate(c, level, upstream.pid!);
          const prior = slot.get(level);
          slot.set(level, [...(Array.isArray(prior) ? prior : []), r]);
        } catch (error) {
          if (!Array.isArray(slot.get(level))) slot.set(level, `failed: ${(error as Error).message}`);
        }
        const after = await upstreamStats();
        const seen = injected.get(c.name) ?? { requests: 0, withCredential: 0 };
        injected.set(c.name, { requests: seen.requests + after.requests - before.requests, withCredential: seen.withCredential + after.withCredential - before.withCredential });
      }
      process.stdout.write(`  ${level} connections, round ${round + 1}/${ROUNDS} done (${Math.round((Date.now() - t0) / 1000)} s)\n`);
    }
  }

  // First request to a new host (CONNECT + TLS with a leaf minted + request, fresh connection each) against a
  // cached host, in turn (new, cached, new, ...) so that both see the same machine; the added cost is the median
  // of the pairwise differences.
  const pairs = await firstRequests(
    newHosts.flatMap((h) => [`https://${h}/`, 'https://bench.test/']),
    tagbox.port,
    files.both,
  );
  const stats = (xs: number[]) => {
    const sorted = [...xs].sort((a, b) => a - b);
    return { n: xs.length, p50: sorted[Math.floor(sorted.length / 2)]!, mean: xs.reduce((a, b) => a + b, 0) / xs.length, max: sorted.at(-1)! };
  };
  const firstNew = stats(pairs.times.filter((_, i) => i % 2 === 0));
  const firstCached = stats(pairs.times.filter((_, i) => i % 2 === 1));
  const added = stats(pairs.times.filter((_, i) => i % 2 === 0).map((t, i) => t - pairs.times[2 * i + 1]!));
  // The mint alone, in this process, with Tagbox's leaf cache and the same CA: a leaf for a name never seen.
  const leaves = new LeafCache({ certPem: localCa.certPem, keyPem: localCa.keyPem });
  const mintTimes: number[] = [];
  for (let i = 0; i < FIRST_N; i++) {
    const t = process.hrtime.bigint();
    await leaves.get(`mint${i}-${Date.now().toString(36)}.bench.test`);
    mintTimes.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  mintTimes.sort((a, b) => a - b);

  // Report.
  process.stdout.write(`\n${loadTable(results, labels, LEVELS, (name) => name !== 'direct')}`);
  process.stdout.write('(x squid: req/s over squid\'s at the same connections; +p50/+p99: latency added over direct; us/req: CPU microseconds per request, utime+stime from /proc; proxy = its whole process tree)\n');
  const checks = [...injected]
    .filter(([name]) => active.find((c) => c.name === name && 'injects' in c && c.injects))
    .map(([name, n]) => `${LABELS.get(name)} ${n.withCredential}/${n.requests}`);
  if (checks.length > 0) process.stdout.write(`requests that reached the upstream with the injected credential: ${checks.join(', ')}\n`);
  if (idle.size > 0) process.stdout.write(`\n${idleTable(idle, labels)}(RSS delta of the proxy's process tree with the tunnels open, per 1,000; squid's tunnels carry TLS end to end, the others terminate it; upstream conns: TLS connections the upstream accepted for them — mitmproxy dials eagerly, its default)\n`);
  process.stdout.write(
    `\nfirst request to a new host through tagbox (fresh connection, CONNECT+TLS+request, leaf minted): p50 ${fmt(firstNew.p50, 2)} ms, mean ${fmt(firstNew.mean, 2)} ms, max ${fmt(firstNew.max, 2)} ms (n=${firstNew.n})\n`,
  );
  process.stdout.write(`same, to a cached host (leaf and upstream pool warm), in turn with the above: p50 ${fmt(firstCached.p50, 2)} ms, mean ${fmt(firstCached.mean, 2)} ms (n=${firstCached.n})\n`);
  process.stdout.write(`a new host adds (median of the pairwise differences): ${fmt(added.p50, 2)} ms\n`);
  process.stdout.write(`leaf mint alone (in process): p50 ${fmt(mintTimes[Math.floor(mintTimes.length / 2)]!, 2)} ms, max ${fmt(mintTimes.at(-1)!, 2)} ms\n`);
  if (process.env.BENCH_PROFILE) {
    tagbox.child.kill('SIGTERM');
    await new Promise((resolve) => tagbox.child.once('exit', resolve));
  }
  process.stdout.write(`\nproxy bench took ${Math.round((Date.now() - t0) / 1000)} s\n`);

  upstream.stdin!.end();
  minimalChild.stdin!.end();
  cleanup();
  rmSync(dir, { recursive: true, force: true });
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    cleanup();
    rmSync(dir, { recursive: true, force: true });
    process.exit(1);
  },
);
