/**
 * node --import tsx bench/usage-tap.ts — what metering costs the model connection.
 *
 * One run, one real Agent Proxy, one upstream (bench/usage-upstream.ts, its own
 * process: HTTPS, keep-alive, a streamed Messages API answer of ~2 KB in three
 * chunks), one load generator (bench/usage-load.ts, its own process: undici,
 * 8 keep-alive connections per case through CONNECT), all on loopback, the upstream
 * reached as api.anthropic.com (connect-to). Two listeners on the same proxy:
 *   off  no usage context: forwarded as any allowed host
 *   on   a channel's usage context: every request gated by the budgets that
 *        apply (an org day budget and a channel month budget, both far from
 *        spent), every answer tapped and written as a usage event
 * The cases alternate in short slices (off, on, on, off, ...) so that drift on a
 * shared machine hits both alike; their totals are compared. Target: on costs < 5% of the
 * throughput of off. Prints requests/s, p50, p99 and the ratio, and checks that
 * every metered answer became one usage event with the right counts.
 */
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createOrg } from '../src/access/orgs-repo.js';
import { createChannel, createWorkspace } from '../src/access/workspaces-repo.js';
import { AuditLog } from '../src/audit/log.js';
import { nextLine, runNode } from './node-children.js';
import { parseBundleFile } from '../src/policy/bundle-file.js';
import { compilePolicy } from '../src/policy/compile.js';
import { AgentProxy } from '../src/proxy/agent-proxy.js';
import { AuditWriter } from '../src/proxy/audit-writer.js';
import { parseConnectTo } from '../src/proxy/connect-to.js';
import { ModelMeter } from '../src/proxy/model-meter.js';
import { openControlStore } from '../src/store/database.js';
import { createCertificateAuthority, issueServerCertificate } from '../src/tls/certificates.js';
import { upsertBudget } from '../src/usage/budgets-repo.js';
import { priceTable } from '../src/usage/prices.js';
import type { LoadResult as ProxyLoadResult } from './proxy-report.js';

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 8);
const SLICE_MS = Number(process.env.BENCH_SLICE_MS ?? 500);
const SLICES = Number(process.env.BENCH_SLICES ?? 16);
const WARMUP_MS = 1000;
const TARGET = 0.05;

/** The load generator's answer (bench/proxy-load.ts), without the CPU this bench does not ask for. */
type LoadResult = Omit<ProxyLoadResult, 'cpu'>;

export interface UsageTapBench {
  off: { rps: number; p50: number; requests: number };
  on: { rps: number; p50: number; requests: number };
  /** Throughput lost to metering: 1 - on/off. */
  cost: number;
  /** The proxy's CPU time per request, on over off, minus 1. */
  cpuCost: number;
  met: boolean;
  usageEvents: number;
}

const fmt = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '-');

export async function main(): Promise<UsageTapBench> {
  const dir = mkdtempSync(join(tmpdir(), 'tagbox-bench-usage-'));
  chmodSync(dir, 0o755);
  const children: ChildProcess[] = [];
  const cleanup = () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  };
  process.once('exit', cleanup);
  try {
    const upstreamCa = await createCertificateAuthority({ commonName: 'Bench Upstream CA', validDays: 1 });
    const leaf = await issueServerCertificate(upstreamCa, ['api.anthropic.com']);
    const deployCa = await createCertificateAuthority({ commonName: 'Bench Deployment CA', validDays: 1 });
    const files = { cert: join(dir, 'leaf.pem'), key: join(dir, 'leaf.key'), both: join(dir, 'both-cas.pem') };
    writeFileSync(files.cert, leaf.certPem);
    writeFileSync(files.key, leaf.keyPem);
    writeFileSync(files.both, `${upstreamCa.certPem}\n${deployCa.certPem}`);

    const upstream = runNode(children, 'usage-upstream.ts', [files.cert, files.key]);
    const upstreamPort = (JSON.parse(await nextLine(upstream, 20_000)) as { port: number }).port;

    // The store as `tagbox up`'s proxy has it: SQLite, the audit log group-committed, usage events too.
    const store = await openControlStore({ dialect: 'sqlite', file: join(dir, 'tagbox.db') });
    const orgId = (await createOrg(store.db, 'bench')).id;
    const ws = await createWorkspace(store.db, { orgId, kind: 'web', externalId: 'web', name: 'web' });
    const channelId = (await createChannel(store.db, { workspaceId: ws.id, externalId: 'eng', name: 'eng' })).id;
    await upsertBudget(store.db, { orgId, scope: { kind: 'org', id: orgId }, period: 'day', unit: 'tokens', limit: 1e15, updatedBy: 'bench' });
    await upsertBudget(store.db, { orgId, scope: { kind: 'channel', id: channelId }, period: 'month', unit: 'cost', limit: 1e15, updatedBy: 'bench' });
    const writer = new AuditWriter(new AuditLog(store));
    const meter = new ModelMeter({ store, prices: priceTable() });
    const proxy = new AgentProxy({
      ca: deployCa,
      audit: writer,
      meter,
      upstream: { connectTo: parseConnectTo([`api.anthropic.com:443:127.0.0.1:${upstreamPort}`]), extraCaPem: upstreamCa.certPem },
    });
    const policy = compilePolicy(parseBundleFile('bundles:\n  - name: model\n    domains: [api.anthropic.com]\n', 'bench-bundles.yaml').bundles);
    const off = await proxy.listen({ host: '127.0.0.1', port: 0 }, { session: 'bench-off', policy });
    const on = await proxy.listen({ host: '127.0.0.1', port: 0 }, { session: 'bench-on', policy, ...(process.env.BENCH_CALIBRATE ? {} : { usage: { orgId, place: { kind: 'channel', channelId } } }) });

    process.stdout.write(`usage-tap bench: ${CONNECTIONS} connections per case, keep-alive, HTTPS through the proxy, streamed answers; ${SLICES} alternating slices of ${SLICE_MS} ms per case after ${WARMUP_MS / 1000} s warm-up\n`);
    const child = runNode(children, 'usage-load.ts', [
      JSON.stringify({ url: 'https://api.anthropic.com/v1/messages', proxies: [`http://127.0.0.1:${off.port}`, `http://127.0.0.1:${on.port}`], caFile: files.both, connections: CONNECTIONS, sliceMs: SLICE_MS, slices: SLICES, warmupMs: WARMUP_MS }),
    ]);
    // The proxy's CPU time (this process: the proxy, its audit and usage writes), charged to the case of each slice.
    const cpu = [0, 0];
    let current: { which: number; since: NodeJS.CpuUsage } | undefined;
    const [a, b] = await new Promise<[LoadResult, LoadResult]>((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => reject(new Error('the load generator did not finish in time')), 2 * (SLICES * SLICE_MS + WARMUP_MS) + 120_000);
      child.once('exit', (code) => code !== 0 && reject(new Error(`the load generator exited with ${code}`)));
      child.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
          const message = JSON.parse(buf.slice(0, i)) as { slice?: number | 'end'; case?: number; results?: [LoadResult, LoadResult] };
          buf = buf.slice(i + 1);
          if (message.results) {
            clearTimeout(timer);
            return resolve(message.results);
          }
          if (current) {
            const used = process.cpuUsage(current.since);
            cpu[current.which]! += used.user + used.system;
          }
          current = message.slice === 'end' ? undefined : { which: message.case!, since: process.cpuUsage() };
          child.stdin!.write('go\n');
        }
      });
    });
    child.stdin!.end();
    await meter.close();
    // Every metered answer (warm-up included) is one usage event, with the upstream's counts.
    const events = await store.db.selectFrom('usage_events').select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.min('output_tokens').as('minOut'), eb.fn.max('output_tokens').as('maxOut')]).executeTakeFirstOrThrow();
    const usageEvents = Number(events.n);
    const cost = 1 - b.rps / a.rps;
    const cpuOff = cpu[0]! / a.requests;
    const cpuOn = cpu[1]! / b.requests;
    const cpuCost = cpuOn / cpuOff - 1;
    const met = cost < TARGET;
    process.stdout.write(
      `\n${'case'.padEnd(6)}${'req/s'.padStart(10)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'errors'.padStart(8)}${'proxy CPU/req'.padStart(16)}\n` +
        `${'off'.padEnd(6)}${fmt(a.rps).padStart(10)}${fmt(a.p50, 3).padStart(9)}${fmt(a.p99, 3).padStart(9)}${String(a.errors).padStart(8)}${`${fmt(cpuOff)} us`.padStart(16)}\n` +
        `${'on'.padEnd(6)}${fmt(b.rps).padStart(10)}${fmt(b.p50, 3).padStart(9)}${fmt(b.p99, 3).padStart(9)}${String(b.errors).padStart(8)}${`${fmt(cpuOn)} us`.padStart(16)}\n` +
        `\nmetered answers recorded: ${usageEvents} usage events (output tokens ${String(events.minOut)}..${String(events.maxOut)}) for ${b.requests} measured metered requests plus warm-up\n` +
        `proxy CPU per request, on/off: ${fmt(cpuOn / cpuOff, 3)}x (+${fmt(cpuOn - cpuOff)} us, ${fmt(cpuCost * 100, 1)}%)\n` +
        `on/off throughput: ${fmt(b.rps / a.rps, 3)}x — the meter costs ${fmt(cost * 100, 1)}% of throughput (target < ${TARGET * 100}%): ${met ? 'met' : 'MISSED'}\n`,
    );
    await proxy.close();
    await writer.close();
    await store.close();
    upstream.stdin!.end();
    if (a.errors + b.errors > 0 || (!process.env.BENCH_CALIBRATE && usageEvents < b.requests)) throw new Error('the bench saw errors, or metered answers without a usage event');
    return { off: { rps: a.rps, p50: a.p50, requests: a.requests }, on: { rps: b.rps, p50: b.p50, requests: b.requests }, cost, cpuCost, met, usageEvents };
  } finally {
    cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
