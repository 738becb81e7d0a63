/**
 * npm run bench:engine — what the `claude` engine costs in a Tagbox sandbox.
 *
 * One turn of the real bundled `claude` binary answering the same fake model
 * (test/fixtures/fake-anthropic.ts, HTTPS on loopback), measured pair by pair
 * in the same run:
 *   bare     `claude -p` on the host, straight to the fake (the baseline);
 *   tagbox   a turn of a live session: invocation -> store -> turn runner ->
 *            the SDK on the host -> `claude` inside the session's bubblewrap
 *            sandbox -> the Agent Proxy (model key injected) -> the fake ->
 *            the answer in the thread (the engine state copied out);
 *   cold     the same, in a new thread (its sandbox and listener built first).
 * Target: tagbox <= 1.3x bare (p50). The machine is shared and noisy: read
 * the ratios, not the absolute figures. Then the proxy's usage tap (bench/usage-tap.ts).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startClaude } from '../test/engines/claude-harness.js';
import { findClaudeBinary } from '../src/engines/claude/claude-binary.js';
import { line, stats } from './stats.js';

const ROUNDS = Number(process.env.BENCH_ENGINE_ROUNDS ?? 15);

async function main(): Promise<void> {
  const binary = findClaudeBinary();
  if (!binary) throw new Error('the claude engine is not installed (npm ci installs the optional dependency)');
  const h = await startClaude('sqlite', { maxTurns: 4 });
  const home = mkdtempSync(join(tmpdir(), 'tagbox-bench-claude-'));
  try {
    h.model.fallback = { text: 'pong' };
    const bare = async (): Promise<number> => {
      const started = performance.now();
      await run(binary.binary, ['-p', 'ping', '--model', 'claude-sonnet-4-5', '--output-format', 'json', '--setting-sources', ''], {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: home,
        ANTHROPIC_BASE_URL: `https://localhost:${h.model.port}`,
        NODE_EXTRA_CA_CERTS: h.ca.certFile,
        ANTHROPIC_API_KEY: 'sk-ant-api03-CANARY-model-key-7f3a9c21e5',
        IS_SANDBOX: '1',
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
        DISABLE_AUTOUPDATER: '1',
      });
      return performance.now() - started;
    };
    const turn = async (thread?: string): Promise<{ ms: number; thread: string }> => {
      const before = thread ? doneCount(await h.events(thread)) : 0;
      const started = performance.now();
      const r = await h.say('@tagbox ping', thread ? { threadKey: thread, mustExist: true } : {});
      // Woken by the thread's own events (no polling delay in the figure).
      await new Promise<void>((resolve) => {
        const check = () => void h.events(r.thread).then((events) => doneCount(events) > before && (stop(), resolve()));
        const stop = h.layer.hub.subscribe(r.thread, check);
        check();
      });
      return { ms: performance.now() - started, thread: r.thread };
    };
    // Warm-up: the binary's pages, the proxy's leaf for api.anthropic.com, the session's sandbox.
    await bare();
    const warm = await turn();
    const samples = { bare: [] as number[], tagbox: [] as number[], cold: [] as number[] };
    for (let i = 0; i < ROUNDS; i++) {
      samples.bare.push(await bare());
      samples.tagbox.push((await turn(warm.thread)).ms);
      samples.cold.push((await turn()).ms);
    }
    const base = stats(samples.bare);
    process.stdout.write(`claude engine turn, ${ROUNDS} rounds, pairs interleaved (one answer from the fake model each)\n`);
    process.stdout.write(`${line('bare `claude -p` (baseline)', base)}\n`);
    process.stdout.write(`${line('tagbox turn, live sandbox', stats(samples.tagbox), base)}   target <= 1.30x: ${stats(samples.tagbox).p50 / base.p50 <= 1.3 ? 'met' : 'missed'}\n`);
    process.stdout.write(`${line('tagbox turn, new thread (cold)', stats(samples.cold), base)}\n`);
  } finally {
    await h.close();
    rmSync(home, { recursive: true, force: true });
  }
  process.stdout.write('\nusage tap on the model connection\n');
  await run(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./usage-tap.ts', import.meta.url))], process.env as Record<string, string>, 'inherit');
}

function doneCount(events: Array<{ type: string }>): number {
  return events.filter((e) => e.type === 'done').length;
}

function run(command: string, args: string[], env: Record<string, string>, stdio: 'ignore' | 'inherit' = 'ignore'): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', stdio === 'inherit' ? 'inherit' : 'pipe', stdio === 'inherit' ? 'inherit' : 'pipe'] });
    let err = '';
    child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    child.stdout?.resume();
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${command} exited ${code}: ${err.slice(-500)}`))));
  });
}

await main();
