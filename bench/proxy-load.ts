/**
 * The benchmark's load generator, in its own process so that it never shares
 * an event loop with the proxy or the upstream. One generator for every case:
 * undici with keep-alive and N connections, HTTPS, either straight to the
 * upstream or through an HTTP proxy with CONNECT (undici's ProxyAgent).
 *
 * argv[2]: JSON LoadSpec. Prints one JSON line with the result. With `cpu`,
 * the result has the CPU time (µs) the proxy's processes, this generator and
 * the upstream spent in the measured window, read from /proc at its start and end.
 */
import { readFileSync } from 'node:fs';
import { Agent, ProxyAgent, request, type Dispatcher } from 'undici';
import { cpuMicros, cpuOf } from './proc-cpu.js';

interface LoadSpec {
  mode: 'load' | 'first';
  url: string;
  /** For 'first': one URL per fresh connection. */
  urls?: string[];
  proxy?: string;
  caFile: string;
  /** Direct only: dial this address, verify as the URL's host. */
  dialAddress?: string;
  connections: number;
  durationMs: number;
  warmupMs: number;
  maxRequests: number;
  /** Pids whose CPU to read around the measured window. */
  cpu?: { proxy: number[]; upstream: number[] };
}

const spec = JSON.parse(process.argv[2]!) as LoadSpec;
const ca = readFileSync(spec.caFile, 'utf8');

function dispatcher(connections: number): Dispatcher {
  if (spec.proxy) return new ProxyAgent({ uri: spec.proxy, requestTls: { ca }, connections, keepAliveTimeout: 60_000 });
  return new Agent({
    connections,
    keepAliveTimeout: 60_000,
    connect: { ca, ...(spec.dialAddress ? { lookup: pinned(spec.dialAddress) } : {}) },
  });
}

/** A lookup that answers every name with one address (the direct case has no DNS for bench names). */
function pinned(address: string) {
  return (_host: string, options: { all?: boolean }, cb: (error: null, a: string | Array<{ address: string; family: number }>, f?: number) => void) =>
    options.all ? cb(null, [{ address, family: 4 }]) : cb(null, address, 4);
}

async function one(d: Dispatcher, url: string): Promise<void> {
  const res = await request(url, { dispatcher: d });
  await res.body.dump();
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode} for ${url}`);
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function load(): Promise<void> {
  const d = dispatcher(spec.connections);
  // Warm up: open the connections, mint leaves, fill pools.
  const warmEnd = Date.now() + spec.warmupMs;
  await Promise.all(Array.from({ length: spec.connections }, async () => {
    while (Date.now() < warmEnd) await one(d, spec.url);
  }));
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const sample = () => ({ proxy: cpuOf(spec.cpu?.proxy ?? []), generator: cpuMicros(process.pid), upstream: cpuOf(spec.cpu?.upstream ?? []) });
  const cpuBefore = sample();
  const started = process.hrtime.bigint();
  const end = Date.now() + spec.durationMs;
  await Promise.all(Array.from({ length: spec.connections }, async () => {
    while (Date.now() < end && latencies.length + errors < spec.maxRequests) {
      const t = process.hrtime.bigint();
      try {
        await one(d, spec.url);
        latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
      } catch (error) {
        errors += 1;
        firstError ??= (error as Error).message;
      }
    }
  }));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpuAfter = sample();
  const cpu = { proxy: cpuAfter.proxy - cpuBefore.proxy, generator: cpuAfter.generator - cpuBefore.generator, upstream: cpuAfter.upstream - cpuBefore.upstream };
  latencies.sort((a, b) => a - b);
  await d.close();
  process.stdout.write(`${JSON.stringify({ requests: latencies.length, errors, firstError, seconds, rps: latencies.length / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99), cpu })}\n`);
}

/** Each URL on a fresh connection: CONNECT + TLS + one request, timed. */
async function first(): Promise<void> {
  const times: number[] = [];
  for (const url of spec.urls ?? []) {
    const d = dispatcher(1);
    const t = process.hrtime.bigint();
    await one(d, url);
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
    await d.close();
  }
  const sorted = [...times].sort((a, b) => a - b);
  process.stdout.write(`${JSON.stringify({ n: times.length, p50: percentile(sorted, 50), mean: times.reduce((a, b) => a + b, 0) / times.length, max: sorted.at(-1), times })}\n`);
}

await (spec.mode === 'first' ? first() : load());
process.exit(0);
