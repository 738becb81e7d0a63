/**
 * npm run bench:sessions — the session spine end to end, as a user meets it:
 * the real `tagbox up` (launcher, server, Agent Proxy; privilege separation
 * when run as root) in a fresh TAGBOX_HOME, driven over HTTP and the threads'
 * Server-Sent Events, with the shell engine and real bubblewrap sandboxes.
 *   baseline  a one-shot `tagbox exec -- sh -c 'echo hi'` process (its own TAGBOX_HOME)
 *   warm      message -> first reply (progress or agent message) in a thread whose sandbox is live
 *   cold      the same in a new thread each time (session, proxy listener and sandbox built by it)
 *   load      100 threads at once, 5 messages each, each sent after the previous turn's `done`;
 *             every thread's stream (open from its first message) must hold exactly its 5 replies,
 *             in order, one `done` per turn, no gap and no duplicate; a replay from 0 must match it
 *   memory    with the 100 load sandboxes idle and alive: their processes' PSS plus the server's
 *             RSS growth over the load, per session
 * The machine is shared and noisy: figures are printed with ratios to the baseline of the same run, and
 * the run fails (exit 1) only when something is broken — an HTTP error, or a lost, duplicated or wrong event.
 * Sandboxes are not released during the run (agent.idleSeconds stays at its default, 900 s): the warm and
 * cold threads' 21 sandboxes stay alive beside the load's 100 (org cap raised to 200), and the memory
 * figure counts only the sandboxes the load created.
 * The store is SQLite in the temporary home; BENCH_DATABASE_URL=postgres://... runs the server on a fresh
 * schema of that database instead (dropped at the end). BENCH_*_N and BENCH_THREADS shrink a trial run.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { ChatClient, isDoneOf, isReplyOf, type ThreadStream } from './chat-client.js';
import { childrenOf, mib, processTable, rssOf } from './proc-tree.js';
import { runLoad } from './sessions-load.js';
import { sandboxMemory, sandboxRoots } from './sessions-memory.js';
import { line, ms, ratio, stats, verdict, type Stats } from './stats.js';
import { cleanEnv, launchUp, REPO_ROOT, TAGBOX_BIN, type TagboxUp } from './tagbox-up.js';

/** A sample count from the environment: a positive integer, or exit 2 naming the variable. */
function count(variable: string, fallback: number): number {
  const raw = process.env[variable];
  if (raw === undefined) return fallback;
  if (!/^[1-9]\d{0,4}$/.test(raw)) {
    console.error(`bench:sessions: ${variable}: expected a whole number from 1 to 99999, got "${raw}"`);
    process.exit(2);
  }
  return Number(raw);
}

const BASELINE_N = count('BENCH_BASELINE_N', 20);
const WARM_N = count('BENCH_WARM_N', 50);
const COLD_N = count('BENCH_COLD_N', 20);
const THREADS = count('BENCH_THREADS', 100);
const PER_THREAD = 5;
const TARGET = { warm: 100, cold: 300 };

const POSTGRES = process.env.BENCH_DATABASE_URL;
const schema = POSTGRES ? `bench_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}` : undefined;

const execHome = mkdtempSync(join(tmpdir(), 'tagbox-bench-exec-'));
let up: TagboxUp | undefined;
let client: ChatClient | undefined;
const streams = new Set<ThreadStream>();
let cleaning: Promise<void> | undefined;
const cleanup = () =>
  (cleaning ??= (async () => {
    // Streams first: the server waits for open ones before it stops.
    for (const s of streams) s.close();
    await client?.destroy().catch(() => undefined);
    await up?.stop();
    rmSync(execHome, { recursive: true, force: true });
    if (POSTGRES && schema) await dropSchemas(POSTGRES, [schema, `${schema}_vault`]).catch((error: unknown) => console.error(`could not drop schema ${schema}: ${String(error)}`));
  })());

/** The server's schema and the vault's (`<schema>_vault`), made by this run. */
async function dropSchemas(url: string, names: string[]): Promise<void> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    for (const name of names) await db.query(`drop schema if exists "${name}" cascade`);
  } finally {
    await db.end();
  }
}

// A reader that went away (`| head`) must not stop the cleanup; nor may anything unforeseen.
process.stdout.on('error', () => undefined);
process.stderr.on('error', () => undefined);
process.on('uncaughtException', (error) => {
  console.error(`bench:sessions: ${error.stack ?? String(error)}`);
  void cleanup().finally(() => process.exit(1));
});
// Any of these stops the run, once, cleanly. (Run with `node --import tsx`, not the tsx command: tsx
// SIGKILLs its child when a busy event loop does not acknowledge a signal within 60 ms.)
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (cleaning) return;
    console.error(`${signal}: stopping tagbox up and removing the temporary homes`);
    void cleanup().finally(() => process.exit(130));
  });
}

const signed = (bytes: number) => `${bytes < 0 ? '-' : '+'}${mib(Math.abs(bytes))}`;

/** 1. A one-shot `tagbox exec`: the whole process, as a user runs it. */
async function baseline(): Promise<Stats> {
  const env = cleanEnv({ TAGBOX_HOME: execHome, HOME: execHome, TAGBOX_LOG_LEVEL: 'warn' });
  const once = () =>
    new Promise<number>((resolve, reject) => {
      const started = performance.now();
      const child = spawn(process.execPath, [TAGBOX_BIN, 'exec', '--', 'sh', '-c', 'echo hi'], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
      child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
      child.on('error', reject);
      child.on('exit', (code) => {
        const took = performance.now() - started;
        if (code === 0 && out === 'hi\n') resolve(took);
        else reject(new Error(`tagbox exec exited ${code}: ${out.slice(0, 500)}`));
      });
    });
  await once(); // the first run makes the home (CA, vault, database): not what is measured
  const samples: number[] = [];
  for (let i = 0; i < BASELINE_N; i++) samples.push(await once());
  return stats(samples);
}

/** 2. Message -> first reply in one thread whose sandbox the first message built. */
async function warm(chat: ChatClient, channel: string): Promise<{ reply: Stats; accepted: Stats; delay: Stats }> {
  const first = await chat.post(channel, 'echo warm-up');
  const stream = await chat.stream(first.thread);
  streams.add(stream);
  await stream.next(isDoneOf(await stream.turnOf(first.message)), 'the first turn');
  const reply: number[] = [];
  const accepted: number[] = [];
  for (let i = 0; i < WARM_N; i++) {
    const started = performance.now();
    const posted = await chat.post(channel, 'echo hi', first.thread);
    accepted.push(performance.now() - started);
    const turn = await stream.turnOf(posted.message);
    reply.push((await stream.next(isReplyOf(turn), `warm reply ${i}`)).at - started);
    // The next sample starts on an idle, live sandbox.
    await stream.next(isDoneOf(turn), `warm done ${i}`);
  }
  const delay = stats(stream.live().map((e) => e.delay));
  stream.close();
  streams.delete(stream);
  return { reply: stats(reply), accepted: stats(accepted), delay };
}

/**
 * 3. Message -> first reply in a new thread each time. Its stream can only be
 * opened once the 202 names the thread; it replays from the start, so an event
 * that came before it is counted when it arrives here (a little late, never early).
 */
async function cold(chat: ChatClient, channel: string): Promise<{ reply: Stats; accepted: Stats }> {
  const reply: number[] = [];
  const accepted: number[] = [];
  for (let i = 0; i < COLD_N; i++) {
    const started = performance.now();
    const posted = await chat.post(channel, 'echo hi');
    accepted.push(performance.now() - started);
    const stream = await chat.stream(posted.thread);
    streams.add(stream);
    const turn = await stream.turnOf(posted.message);
    reply.push((await stream.next(isReplyOf(turn), `cold reply ${i}`)).at - started);
    await stream.next(isDoneOf(turn), `cold done ${i}`);
    stream.close();
    streams.delete(stream);
  }
  return { reply: stats(reply), accepted: stats(accepted) };
}

async function main(): Promise<number> {
  const store = POSTGRES ? `Postgres schema ${schema}` : 'SQLite';
  console.log(`bench:sessions — real \`tagbox up\` (${store}, shell engine, bubblewrap) as uid ${process.getuid?.()}; sandboxes are not released during the run`);
  const base = await baseline();
  console.log(line("baseline: tagbox exec -- sh -c 'echo hi'", base));

  up = launchUp({ TAGBOX_AGENT_MAX_SANDBOXES_PER_ORG: '200', ...(POSTGRES && schema ? { TAGBOX_DATABASE_URL: POSTGRES, TAGBOX_DATABASE_SCHEMA: schema } : {}) });
  const { url, token } = await up.ready;
  const chat = (client = new ChatClient(url, token));
  const channels = await chat.get<Array<{ id: string; name: string }>>('/api/v1/channels');
  const channel = channels.find((c) => c.name === 'general')?.id;
  if (!channel) throw new Error(`no #general channel: ${JSON.stringify(channels)}`);
  const serverPid = up.serverPid();
  const proxyPid = childrenOf(processTable(), up.launcherPid).find((p) => p.args.includes('proxy-daemon'))?.pid;
  console.log(`tagbox up at ${url}: server-daemon pid ${serverPid}, proxy-daemon pid ${proxyPid ?? '?'}`);

  const w = await warm(chat, channel);
  console.log(line('warm: message -> first reply', w.reply, base, TARGET.warm));
  console.log(line('  (warm: POST -> 202)', w.accepted));
  console.log(line('  (warm: event written -> on stream)', w.delay));
  const c = await cold(chat, channel);
  console.log(line('cold: message -> first reply', c.reply, base, TARGET.cold));
  console.log(line('  (cold: POST -> 202)', c.accepted));

  // 4. Load. What the server and its sandboxes hold before it, for 5.
  const rootsBefore = sandboxRoots(serverPid);
  const serverBefore = rssOf(serverPid);
  const proxyBefore = proxyPid ? rssOf(proxyPid) : 0;
  const load = await runLoad(chat, channel, { threads: THREADS, perThread: PER_THREAD, opened: (s) => streams.add(s) });
  for (const s of load.streams) s.close();
  const all = stats([...load.firstMs, ...load.laterMs]);
  const rate = `${((load.sent / load.wallMs) * 1000).toFixed(1)} messages/s`;
  const broken = load.httpErrors + load.lost + load.gaps + load.duplicates + load.wrong + load.replayMismatches + load.stalled;
  console.log(`load: ${THREADS} threads x ${PER_THREAD} messages, each after the previous turn's done: ${load.sent} sent in ${(load.wallMs / 1000).toFixed(1)} s, ${rate}`);
  console.log(line('  (load: POST -> done, all)', all, base));
  console.log(line('  (load: POST -> done, 1st message)', stats(load.firstMs)));
  console.log(line('  (load: POST -> done, 2nd-5th)', stats(load.laterMs)));
  console.log(`${line('  (load: event written -> on stream)', stats(load.delays))}  ${load.delays.filter((d) => d >= 900).length} of them >= 900 ms`);
  console.log(`  errors ${load.httpErrors}, lost events ${load.lost}, gaps in event ids ${load.gaps}, duplicates ${load.duplicates}, wrong ${load.wrong}, replay mismatches ${load.replayMismatches}, stalled threads ${load.stalled}`);
  for (const n of load.notes) console.log(`  ! ${n}`);

  // 5. Memory of the load's sandboxes, idle and alive (streams closed: nobody is watching).
  await sleep(1000);
  const memory = sandboxMemory(serverPid, rootsBefore);
  const serverAfter = rssOf(serverPid);
  const proxyAfter = proxyPid ? rssOf(proxyPid) : 0;
  const growth = serverAfter - serverBefore;
  const perSession = (memory.pss + growth) / THREADS;
  console.log(`memory: ${memory.sandboxes} new sandboxes (expected ${THREADS}) over ${memory.kinds}`);
  console.log(`  sandboxes PSS ${mib(memory.pss)} MiB (RSS ${mib(memory.rss)} MiB); server-daemon RSS ${mib(serverBefore)} -> ${mib(serverAfter)} MiB (${signed(growth)})`);
  console.log(`  per idle session: ${mib(perSession)} MiB = (sandboxes PSS + server RSS growth) / ${THREADS}`);
  console.log(`  (not counted: proxy-daemon RSS ${mib(proxyBefore)} -> ${mib(proxyAfter)} MiB, ${signed((proxyAfter - proxyBefore) / THREADS)} MiB per session)`);

  console.log('');
  console.log('| case | n | p50 | p99 | vs baseline p50 | target / result |');
  console.log('|---|---|---|---|---|---|');
  console.log(`| baseline \`tagbox exec -- sh -c 'echo hi'\` | ${base.n} | ${ms(base.p50)} | ${ms(base.p99)} | 1.00x | |`);
  console.log(`| warm: message -> first reply | ${w.reply.n} | ${ms(w.reply.p50)} | ${ms(w.reply.p99)} | ${ratio(w.reply, base)} | ${verdict(w.reply, TARGET.warm)} |`);
  console.log(`| cold: message -> first reply | ${c.reply.n} | ${ms(c.reply.p50)} | ${ms(c.reply.p99)} | ${ratio(c.reply, base)} | ${verdict(c.reply, TARGET.cold)} |`);
  console.log(`| load: POST -> done, ${THREADS} threads x ${PER_THREAD} | ${all.n} | ${ms(all.p50)} | ${ms(all.p99)} | ${ratio(all, base)} | ${rate}, ${(load.wallMs / 1000).toFixed(1)} s; errors ${load.httpErrors}, lost events ${load.lost} |`);
  console.log(`| memory per idle session | ${memory.sandboxes} | ${mib(perSession)} MiB | | | server RSS ${mib(serverBefore)} -> ${mib(serverAfter)} MiB |`);
  if (broken > 0) console.log(`\nBROKEN: ${broken} error(s), stalled thread(s) or lost, duplicated or wrong event(s)`);
  return broken > 0 ? 1 : 0;
}

try {
  process.exitCode = await main();
} catch (error) {
  // Interrupted: what failed is the run the signal stopped; the handler exits 130 once cleaned up.
  if (!cleaning) console.error(`bench:sessions failed: ${(error as Error).stack ?? String(error)}`);
  if (up && !cleaning) console.error(`--- tagbox up output (last lines) ---\n${up.output().replace(/tbx_\S+/g, 'tbx_...').split('\n').slice(-30).join('\n')}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
