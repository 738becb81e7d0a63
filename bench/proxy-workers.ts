/**
 * `tagbox proxy --workers N` against one process, same run: the load generator
 * pinned to CPU 0 (taskset), the proxies and the upstream free to use what is
 * left. Rounds alternate (1 worker, 2 workers, ...) so that a drifting machine
 * slows both alike; medians of the rounds; the ratio of 2 workers to 1.
 *
 * Knobs: BENCH_ROUNDS=3  BENCH_CONNECTIONS=8  BENCH_DURATION_MS=2500  BENCH_WARMUP_MS=1000
 *        BENCH_WORKERS=2  BENCH_LOAD_CPUS=0
 */
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nextLine, runNode } from './node-children.js';
import { treePids } from './proc-cpu.js';
import { killChildren } from './proc-tree.js';
import { median, type LoadResult } from './proxy-report.js';
import { setUpProxyBench } from './proxy-setup.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 8);
const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 2500);
const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 1000);
const WORKERS = Number(process.env.BENCH_WORKERS ?? 2);
const LOAD_CPUS = process.env.BENCH_LOAD_CPUS ?? '0';

const dir = mkdtempSync(join(tmpdir(), 'tagbox-bench-workers-'));
chmodSync(dir, 0o755);
const children: ChildProcess[] = [];
process.on('exit', () => killChildren(children));

async function load(url: string, proxy: { port: number; pid: number }, caFile: string, upstreamPid: number): Promise<LoadResult> {
  const spec = {
    mode: 'load',
    url,
    caFile,
    connections: CONNECTIONS,
    durationMs: DURATION_MS,
    warmupMs: WARMUP_MS,
    maxRequests: 2_000_000,
    proxy: `http://127.0.0.1:${proxy.port}`,
    cpu: { proxy: treePids(proxy.pid), upstream: [upstreamPid] },
  };
  const child = runNode(children, 'proxy-load.ts', [JSON.stringify(spec)], LOAD_CPUS);
  child.stdin!.end();
  return JSON.parse(await nextLine(child, DURATION_MS + WARMUP_MS + 60_000)) as LoadResult;
}

async function main(): Promise<void> {
  const { files, upstream, tagbox, startTagbox } = await setUpProxyBench(children, dir);
  const many = await startTagbox('workers', WORKERS);
  const setups = [
    { label: '1 process', proxy: { port: tagbox.port, pid: tagbox.child.pid! } },
    { label: `${WORKERS} workers`, proxy: { port: many.port, pid: many.child.pid! } },
  ];
  const cases = [
    { name: 'credential', url: 'https://api.bench.test/' },
    { name: 'allowlist', url: 'https://bench.test/' },
  ];
  process.stdout.write(`load generator pinned to CPU ${LOAD_CPUS} of ${(await import('node:os')).cpus().length}; ${CONNECTIONS} connections; ${ROUNDS} rounds of ${DURATION_MS} ms\n\n`);
  process.stdout.write(`${'case'.padEnd(12)}${'proxy'.padEnd(14)}${'req/s'.padStart(9)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'proxy µs/req'.padStart(14)}\n`);
  for (const c of cases) {
    const results = setups.map(() => [] as LoadResult[]);
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < setups.length; i++) {
        const r = await load(c.url, setups[i]!.proxy, files.both, upstream.pid!);
        if (r.errors > 0) throw new Error(`${c.name} via ${setups[i]!.label}: ${r.errors} errors (${r.firstError})`);
        results[i]!.push(r);
      }
    }
    const rps = results.map((rs) => median(rs.map((r) => r.rps)));
    for (let i = 0; i < setups.length; i++) {
      const rs = results[i]!;
      const cpu = median(rs.map((r) => r.cpu.proxy / r.requests));
      process.stdout.write(
        `${c.name.padEnd(12)}${setups[i]!.label.padEnd(14)}${rps[i]!.toFixed(0).padStart(9)}${median(rs.map((r) => r.p50)).toFixed(2).padStart(9)}${median(rs.map((r) => r.p99)).toFixed(2).padStart(9)}${cpu.toFixed(0).padStart(14)}\n`,
      );
    }
    process.stdout.write(`${c.name.padEnd(12)}${`${WORKERS} workers / 1`.padEnd(14)}${(rps[1]! / rps[0]!).toFixed(2).padStart(8)}x\n\n`);
  }
}

main()
  .catch((error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 1;
  })
  .finally(() => {
    killChildren(children);
    rmSync(dir, { recursive: true, force: true });
  });
