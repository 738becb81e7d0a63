/**
 * Policy benchmark: compile time for 10,000 bundles, and decide() throughput on
 * that policy against a plain Map.get on the same hosts (the floor any lookup
 * by host must pay). Run: npx tsx bench/policy.ts
 */
import { performance } from 'node:perf_hooks';
import type { Bundle } from '../src/policy/bundle-schema.js';
import { compilePolicy } from '../src/policy/compile.js';
import { decide, type EgressRequest } from '../src/policy/decide.js';

const BUNDLES = 10_000;

function makeBundles(n: number): Bundle[] {
  return Array.from({ length: n }, (_, i) => ({
    name: `team-${i}`,
    domains: [{ host: `svc-${i}.example.com` }, { host: `*.cdn-${i}.example.net` }, { host: `api-${i}.example.org`, ports: [8443] }],
    connections: [
      {
        name: 'api',
        secret: `team-${i}-token`,
        allowedWebsites: [{ host: `api-${i}.example.com` }],
        inject: { header: 'Authorization', value: 'Bearer {{secret}}' },
        narrow: { pathPrefix: `/orgs/team-${i}/`, readOnly: true },
      },
    ],
  }));
}

function time<T>(fn: () => T): [T, number] {
  const start = performance.now();
  const result = fn();
  return [result, performance.now() - start];
}

const bundles = makeBundles(BUNDLES);
const [, coldMs] = time(() => compilePolicy(bundles));
const compileRuns = 5;
let compileTotal = 0;
let policy = compilePolicy(bundles);
for (let r = 0; r < compileRuns; r++) {
  const [p, ms] = time(() => compilePolicy(bundles));
  policy = p;
  compileTotal += ms;
}

// A mix: credential, allowlist (domains, wildcard, outside narrowing), blocked.
const requests: EgressRequest[] = [];
for (let i = 0; i < 4096; i++) {
  const t = (i * 7919) % BUNDLES;
  switch (i % 5) {
    case 0:
      requests.push({ method: 'GET', scheme: 'https', host: `api-${t}.example.com`, port: 443, path: `/orgs/team-${t}/repos?page=2` });
      break;
    case 1:
      requests.push({ method: 'POST', scheme: 'https', host: `api-${t}.example.com`, port: 443, path: `/orgs/team-${t}/repos` });
      break;
    case 2:
      requests.push({ method: 'GET', scheme: 'https', host: `svc-${t}.example.com`, port: 443, path: '/health' });
      break;
    case 3:
      requests.push({ method: 'GET', scheme: 'https', host: `a.b.cdn-${t}.example.net`, port: 443, path: '/x.js' });
      break;
    default:
      requests.push({ method: 'GET', scheme: 'https', host: `evil-${t}.example.com`, port: 443, path: '/' });
  }
}
const hosts = requests.map((r) => r.host);
const map = new Map<string, number>();
for (const b of bundles) for (const d of b.domains) map.set(d.host, 1);

function rate(fn: (i: number) => unknown, seconds = 1): number {
  for (let i = 0; i < 20_000; i++) fn(i); // warm up
  let ops = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let sink = 0;
  while (performance.now() < deadline) {
    for (let i = 0; i < 10_000; i++, ops++) if (fn(ops) !== undefined) sink++;
  }
  if (sink < 0) console.log(sink);
  return ops / ((performance.now() - start) / 1000);
}

const decideRate = rate((i) => decide(policy, requests[i & 4095]!));
const mapRate = rate((i) => map.get(hosts[i & 4095]!));
const outcomes = new Map<string, number>();
for (const r of requests) {
  const o = decide(policy, r).outcome;
  outcomes.set(o, (outcomes.get(o) ?? 0) + 1);
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
console.log(`policy bench (node ${process.version})`);
console.log(`compile ${BUNDLES} bundles: first ${coldMs.toFixed(1)} ms, mean of ${compileRuns} ${(compileTotal / compileRuns).toFixed(1)} ms`);
console.log(`decide():     ${fmt(decideRate)} /s  (${(1e9 / decideRate).toFixed(0)} ns each; mix ${[...outcomes].map(([k, v]) => `${k} ${v}`).join(', ')})`);
console.log(`Map.get():    ${fmt(mapRate)} /s`);
console.log(`ratio Map.get / decide: ${(mapRate / decideRate).toFixed(1)}x`);
