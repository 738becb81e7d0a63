/**
 * The usage-tap benchmark's load generator, in its own process: two undici
 * ProxyAgents (HTTPS through CONNECT, keep-alive, N connections each), one per
 * listener, driven in alternating slices — A, B, A, B, ... — so that whatever
 * else the machine does falls on both alike. Requests are timed one by one.
 *
 * Before each measured slice it prints {"slice": k, "case": i} and waits for a
 * line on stdin (so that the proxy's process can read its CPU time between
 * slices, and charge each slice's to its case); after the last, {"slice": "end"}
 * and the same wait.
 *
 * argv[2]: JSON {url, proxies: [a, b], caFile, connections, sliceMs, slices, warmupMs}.
 * Then prints one JSON line: {"results": [{requests, errors, firstError?, seconds, rps, p50, p99}, {…}]}.
 */
import { readFileSync } from 'node:fs';
import { ProxyAgent, request } from 'undici';

interface Spec {
  url: string;
  proxies: [string, string];
  caFile: string;
  connections: number;
  sliceMs: number;
  slices: number;
  warmupMs: number;
}

const spec = JSON.parse(process.argv[2]!) as Spec;
const ca = readFileSync(spec.caFile, 'utf8');
const agents = spec.proxies.map((uri) => new ProxyAgent({ uri, requestTls: { ca }, connections: spec.connections, keepAliveTimeout: 60_000 }));

async function one(agent: ProxyAgent): Promise<void> {
  const res = await request(spec.url, { dispatcher: agent, method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"stream":true}' });
  await res.body.dump();
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
}

async function run(agent: ProxyAgent, ms: number, latencies?: number[], failures?: { n: number; first?: string }): Promise<number> {
  const end = Date.now() + ms;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: spec.connections }, async () => {
      while (Date.now() < end) {
        const t = process.hrtime.bigint();
        try {
          await one(agent);
          latencies?.push(Number(process.hrtime.bigint() - t) / 1e6);
        } catch (error) {
          if (failures) {
            failures.n += 1;
            failures.first ??= (error as Error).message;
          }
        }
      }
    }),
  );
  return Number(process.hrtime.bigint() - started) / 1e9;
}

const lines = (async function* () {
  let buf = '';
  for await (const chunk of process.stdin) {
    buf += String(chunk);
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      yield buf.slice(0, i);
      buf = buf.slice(i + 1);
    }
  }
})();
/** Tells the proxy's process where a slice begins, and waits for it to have read its clock. */
async function mark(slice: number | 'end', which?: number): Promise<void> {
  process.stdout.write(`${JSON.stringify({ slice, ...(which !== undefined ? { case: which } : {}) })}\n`);
  await lines.next();
}

for (const agent of agents) await run(agent, spec.warmupMs);
const results = agents.map(() => ({ latencies: [] as number[], failures: { n: 0 } as { n: number; first?: string }, seconds: 0 }));
for (let slice = 0; slice < spec.slices; slice++) {
  // A, B, then B, A: each case goes first as often as the other.
  const order = slice % 2 === 0 ? [0, 1] : [1, 0];
  for (const i of order) {
    await mark(slice, i);
    results[i]!.seconds += await run(agents[i]!, spec.sliceMs, results[i]!.latencies, results[i]!.failures);
  }
}
await mark('end');
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const out = results.map((r) => {
  const sorted = [...r.latencies].sort((a, b) => a - b);
  return { requests: sorted.length, errors: r.failures.n, ...(r.failures.first ? { firstError: r.failures.first } : {}), seconds: r.seconds, rps: sorted.length / r.seconds, p50: pct(sorted, 50), p99: pct(sorted, 99) };
});
await Promise.all(agents.map((a) => a.close()));
process.stdout.write(`${JSON.stringify({ results: out })}\n`);
process.exit(0);
