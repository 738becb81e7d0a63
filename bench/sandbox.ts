/**
 * Sandbox benchmark: `npm run bench:sandbox`.
 *   bare      bwrap with the same namespaces and a minimal /usr view, running `true`
 *   warm      one exec of `true` in a live Tagbox sandbox
 *   cold      create + exec `true` + release
 *   memory    host memory (RSS and PSS) of an idle live sandbox's processes
 *   one-shot  the whole `tagbox exec -- true` process against `srt true`, in turn, median of 10
 *   hand-off  the same with `tagbox up` running on the home (the command handed to it), in turn with srt
 * Targets: warm p50 within 2x of bare; idle memory under 5 MiB; exec <= 0.5x srt.
 */
import { spawn } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBubblewrapProvider, findExecutable, runInSandbox } from '../src/sandbox/index.js';
import { startUp } from '../test/helpers/up.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 40);
const root = mkdtempSync(join(tmpdir(), 'tagbox-bench-sandbox-'));
const provider = await createBubblewrapProvider({ home: join(root, 'home') });
// Where the provider can bind it from (as root, bubblewrap runs as the unprivileged launcher user).
const proxySocket = provider.proxySocketPath('bench');
const server = createServer((_req, res) => res.end('ok'));
await new Promise<void>((resolve) => server.listen(proxySocket, resolve));
chmodSync(proxySocket, 0o666);
const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

async function measure(name: string, rounds: number, once: () => Promise<unknown>): Promise<number> {
  await once(); // warm caches
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const started = performance.now();
    await once();
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  const p50 = times[Math.floor(times.length / 2)] ?? 0;
  const p90 = times[Math.floor(times.length * 0.9)] ?? 0;
  console.log(`${name.padEnd(34)} p50 ${p50.toFixed(1).padStart(7)} ms   p90 ${p90.toFixed(1).padStart(7)} ms   (${rounds} runs)`);
  return p50;
}

/** Two commands in turn, one warm-up each; the median wall time (ms) of each. */
async function measurePair(rounds: number, a: () => Promise<unknown>, b: () => Promise<unknown>): Promise<{ a: number; b: number }> {
  await a();
  await b();
  const times = { a: [] as number[], b: [] as number[] };
  for (let i = 0; i < rounds; i++) {
    for (const [key, once] of [['a', a], ['b', b]] as const) {
      const started = performance.now();
      await once();
      times[key].push(performance.now() - started);
    }
  }
  return { a: median(times.a), b: median(times.b) };
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

function run(command: string, args: string[], env: Record<string, string> = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: 'ignore', env });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${command} exited ${code}`))));
  });
}

const bwrap = findExecutable('bwrap') ?? 'bwrap';
const bareArgs = [
  '--unshare-all', '--die-with-parent', '--ro-bind', '/usr', '/usr', '--symlink', 'usr/bin', '/bin', '--symlink', 'usr/lib', '/lib',
  '--symlink', 'usr/lib64', '/lib64', '--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp', '--', '/bin/true',
];

console.log(`limits by: ${provider.mechanism.kind}; sandbox user: ${provider.identity.mode === 'separate' ? provider.identity.sandbox.uid : 'single-user'}; seccomp on`);
const spec = { proxySocket, caCertPem: CA };

const bare = await measure('bare bwrap -- true', ROUNDS, () => run(bwrap, bareArgs));

const live = await provider.create(spec);
const warm = await measure('tagbox warm exec (live sandbox)', ROUNDS, () => runInSandbox(provider, live, { argv: ['true'] }));

const cold = await measure('tagbox create + exec + release', Math.max(5, Math.floor(ROUNDS / 4)), async () => {
  const sandbox = await provider.create(spec);
  await runInSandbox(provider, sandbox, { argv: ['true'] });
  await provider.release(sandbox);
});

// One-shot, as a user types it: the whole `tagbox exec -- true` process (sandbox, audit, and
// the proxy's socket; the proxy itself starts only if the command connects) against Anthropic's
// sandbox-runtime doing the same (`srt`, a bench-only dependency; it needs ripgrep, installed here
// when missing and root). Whole-process wall time, the two in turn (A B A B ...) after one warm-up
// each, so that a drifting machine slows both alike; the median of 10 and the ratio of medians.
const ONE_SHOT_ROUNDS = Number(process.env.BENCH_ONE_SHOT_ROUNDS ?? 10);
const home = join(root, 'exec-home');
const oneShotEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', TAGBOX_HOME: home, HOME: root };
ensureRipgrep();
const srtSettings = join(root, 'srt-settings.json');
writeFileSync(srtSettings, JSON.stringify({ network: { allowedDomains: [], deniedDomains: [] }, filesystem: { denyRead: [], allowWrite: ['/tmp'], denyWrite: [] } }));
const srtBin = join('node_modules', '.bin', 'srt');
const tagboxOnce = () => run(process.execPath, ['bin/tagbox.js', 'exec', '--', 'true'], oneShotEnv);
const srtOnce = () => run(srtBin, ['-s', srtSettings, 'true'], { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: root });
const { a: oneShot, b: srt } = await measurePair(ONE_SHOT_ROUNDS, tagboxOnce, srtOnce);
console.log(`${'tagbox exec -- true (one-shot)'.padEnd(34)} median ${oneShot.toFixed(1).padStart(7)} ms   (${ONE_SHOT_ROUNDS} runs, whole process)`);
console.log(`${'srt true (sandbox-runtime)'.padEnd(34)} median ${srt.toFixed(1).padStart(7)} ms   (${ONE_SHOT_ROUNDS} runs, whole process)`);

// Handed off: the same command with `tagbox up` running on its home, which takes it (its
// sandbox built ahead, its proxy warm: src/server/exec-service.ts). Same pairing with srt.
chmodSync(root, 0o755); // under privilege separation the server's users must reach the home
const upHome = join(root, 'up-home');
const up = await startUp({ TAGBOX_HOME: upHome }, 0);
const handOffOnce = () => run(process.execPath, ['bin/tagbox.js', 'exec', '--', 'true'], { ...oneShotEnv, TAGBOX_HOME: upHome });
const { a: handedOff, b: srtBeside } = await measurePair(ONE_SHOT_ROUNDS, handOffOnce, srtOnce);
// With a bundle file: the client grants it to the proxy first (its own socket), then hands the command over.
const bundleFile = join(root, 'bench-bundles.yaml');
writeFileSync(bundleFile, 'bundles:\n  - name: bench\n    domains: [bench.test]\n');
const handOffBundlesOnce = () => run(process.execPath, ['bin/tagbox.js', 'exec', '--bundles', bundleFile, '--', 'true'], { ...oneShotEnv, TAGBOX_HOME: upHome });
const { a: handedOffBundles, b: srtBesideBundles } = await measurePair(ONE_SHOT_ROUNDS, handOffBundlesOnce, srtOnce);
await up.stop();
console.log(`${'tagbox exec -- true (tagbox up)'.padEnd(34)} median ${handedOff.toFixed(1).padStart(7)} ms   (${ONE_SHOT_ROUNDS} runs, whole process)`);
console.log(`${'srt true (sandbox-runtime)'.padEnd(34)} median ${srtBeside.toFixed(1).padStart(7)} ms   (${ONE_SHOT_ROUNDS} runs, whole process)`);
console.log(`${'tagbox exec --bundles (tagbox up)'.padEnd(34)} median ${handedOffBundles.toFixed(1).padStart(7)} ms   (${ONE_SHOT_ROUNDS} runs, whole process)`);
console.log(`${'srt true (sandbox-runtime)'.padEnd(34)} median ${srtBesideBundles.toFixed(1).padStart(7)} ms   (${ONE_SHOT_ROUNDS} runs, whole process)`);

await new Promise((resolve) => setTimeout(resolve, 300)); // let the idle sandbox settle
const memory = idleMemory(live as unknown as { monitorPid: number });
await provider.release(live);

console.log('');
console.log(`warm exec / bare bwrap          ${(warm / bare).toFixed(2)}x   (target <= 2x)`);
console.log(`create+exec+release / bare      ${(cold / bare).toFixed(2)}x`);
console.log(`one-shot tagbox exec / srt      ${(oneShot / srt).toFixed(2)}x   (medians of ${ONE_SHOT_ROUNDS}; target <= 0.5x)`);
console.log(`handed-off tagbox exec / srt    ${(handedOff / srtBeside).toFixed(2)}x   (medians of ${ONE_SHOT_ROUNDS}, tagbox up running; target <= 0.5x)`);
console.log(`  with --bundles (a grant)      ${(handedOffBundles / srtBesideBundles).toFixed(2)}x`);
console.log(`idle sandbox host memory        RSS ${mib(memory.rss)} MiB, PSS ${mib(memory.pss)} MiB over ${memory.processes.length} processes (target < 5 MiB)`);
console.log(`  ${memory.processes.join(', ')}`);

server.close();
rmSync(root, { recursive: true, force: true });

/** RSS and PSS of bwrap and every descendant (the sandbox's host-visible processes). */
function idleMemory(sandbox: { monitorPid: number }): { rss: number; pss: number; processes: string[] } {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // gone
    }
  }
  const pids: number[] = [];
  const queue = [sandbox.monitorPid];
  while (queue.length > 0) {
    const pid = queue.shift() as number;
    pids.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  let rss = 0;
  let pss = 0;
  const processes: string[] = [];
  for (const pid of pids) {
    try {
      const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
      const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? 0);
      rss += kib('Rss') * 1024;
      pss += kib('Pss') * 1024;
      processes.push(`${readFileSync(`/proc/${pid}/comm`, 'utf8').trim()} ${mib(kib('Pss') * 1024)}`);
    } catch {
      // gone
    }
  }
  return { rss, pss, processes };
}

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(2);
}

function ensureRipgrep(): void {
  if (findExecutable('rg')) return;
  if (process.getuid?.() !== 0) throw new Error('srt needs ripgrep: apt-get install ripgrep');
  spawnSync('apt-get', ['install', '-y', '-qq', 'ripgrep'], { stdio: 'ignore' });
}
