/**
 * npm run bench:web — the web chat as a member meets it:
 *   first load  the JavaScript a first visit downloads, gzipped (dist/web/first-load.json, written by
 *               the build), against the 200 KB budget
 *   browser     send -> first streamed output on screen: in a real headless Chromium on a thread whose
 *               sandbox is live, the Send button is clicked and the time runs until the command's first
 *               line is in the page's work fold (measured in the page: click to DOM, then one animation frame)
 *   api         the same through the chat API alone: POST, then the thread's SSE until the first
 *               `progress` event with that line (the baseline: what the page adds is the ratio)
 * Rounds alternate (api, browser, api, …) so that the machine's noise falls on both alike; each round
 * waits for its turn's `done`. The real `tagbox up` (shell engine, bubblewrap) in a fresh TAGBOX_HOME,
 * SQLite. The browser is signed in with the owner's API token as a header (the latency measured is the
 * page's and the stream's, not the sign-in's). BENCH_WEB_N sets the rounds (default 20 each).
 * Fails (exit 1) only when something is broken: over budget, an HTTP error, output that never shows.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ChatClient, isDoneOf, type ThreadStream } from './chat-client.js';
import { ms } from './stats.js';
import { launchUp, REPO_ROOT, type TagboxUp } from './tagbox-up.js';

const N = (() => {
  const raw = process.env.BENCH_WEB_N;
  if (raw === undefined) return 20;
  if (!/^[1-9]\d{0,3}$/.test(raw)) {
    console.error(`bench:web: BENCH_WEB_N: expected a whole number from 1 to 9999, got "${raw}"`);
    process.exit(2);
  }
  return Number(raw);
})();

const command = (tok: string) => `echo ${tok}; sleep 1; echo end`;

let up: TagboxUp | undefined;
let client: ChatClient | undefined;
let browser: Browser | undefined;
let stream: ThreadStream | undefined;
let cleaning: Promise<void> | undefined;
const cleanup = () =>
  (cleaning ??= (async () => {
    stream?.close();
    await browser?.close().catch(() => undefined);
    await client?.destroy().catch(() => undefined);
    await up?.stop();
  })());
process.stdout.on('error', () => undefined);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (cleaning) return;
    console.error(`${signal}: stopping tagbox up`);
    void cleanup().finally(() => process.exit(130));
  });
}

/** Median and p90 (nearest rank). */
function spread(samples: number[]): { n: number; p50: number; p90: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] ?? NaN;
  return { n: sorted.length, p50: at(0.5), p90: at(0.9) };
}

const row = (name: string, s: { n: number; p50: number; p90: number }, extra = '') =>
  `${name.padEnd(46)} n=${String(s.n).padEnd(4)} p50 ${ms(s.p50).padStart(10)}  p90 ${ms(s.p90).padStart(10)}  ${extra}`.trimEnd();

function firstLoad(): { ok: boolean; text: string } {
  const file = join(REPO_ROOT, 'dist', 'web', 'first-load.json');
  if (!existsSync(file)) return { ok: false, text: `first-load JS: ${file} is missing (run npm run build)` };
  const f = JSON.parse(readFileSync(file, 'utf8')) as { files: string[]; gzipBytes: number; rawBytes: number; budgetBytes: number };
  const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
  const ok = f.gzipBytes <= f.budgetBytes;
  return {
    ok,
    text: `first-load JS: ${kib(f.gzipBytes)} gzip (${kib(f.rawBytes)} raw, ${f.files.length} file${f.files.length === 1 ? '' : 's'}) of the ${kib(f.budgetBytes)} budget: ${((100 * f.gzipBytes) / f.budgetBytes).toFixed(1)}% — ${ok ? 'within' : 'OVER'} budget`,
  };
}

function chromiumPath(): string {
  const found = [process.env.TAGBOX_CHROMIUM, '/usr/lib/chromium/chromium', '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((c): c is string => Boolean(c) && existsSync(c!));
  if (!found) throw new Error('Chromium is not installed: apt-get install chromium (scripts/test-prereqs.sh does it)');
  return found;
}

/** One API round: POST, then the open stream until the first progress with `tok`; waits for the turn's done. */
async function apiRound(chat: ChatClient, s: ThreadStream, channel: string, thread: string, tok: string): Promise<number> {
  const started = performance.now();
  const posted = await chat.post(channel, command(tok), thread);
  const turn = await s.turnOf(posted.message);
  const first = await s.next((e) => e.type === 'progress' && e.data.turn === turn && String(e.data.text).includes(tok), `output ${tok}`);
  await s.next(isDoneOf(turn), `done of ${tok}`);
  return first.at - started;
}

/** One browser round: the page's own clock from the click to `tok` in the work fold (then a frame); waits for Idle. */
async function browserRound(page: Page, tok: string): Promise<number> {
  const box = page.getByRole('textbox', { name: /^Reply in / });
  await box.fill(command(tok));
  // A string is evaluated as an expression (not called with an argument): the call is written into it.
  const took = await page.evaluate<number>(`(${MEASURE})(${JSON.stringify(tok)})`);
  if (!Number.isFinite(took)) throw new Error(`the page measured no time for ${tok}: ${String(took)}`);
  await page.getByRole('status').getByText('Idle').waitFor({ timeout: 60_000 });
  return took;
}

/**
 * In the page (a string: this file is compiled without the DOM's types): click Send, and resolve with the
 * milliseconds until `tok` is in a work fold's output and a frame has been drawn.
 */
const MEASURE = `(tok) => new Promise((resolve, reject) => {
  const log = document.querySelector('[role="log"]');
  const send = [...document.querySelectorAll('button[type="submit"]')].find((b) => b.textContent === 'Send');
  if (!log || !send) return reject(new Error('no log or Send button on the page'));
  const shown = () => [...log.querySelectorAll('.work-output')].some((el) => el.textContent.includes(tok));
  let started = 0;
  const timer = setTimeout(() => { observer.disconnect(); reject(new Error(tok + ' not on the page within 60 s')); }, 60000);
  const observer = new MutationObserver(() => {
    if (!shown()) return;
    observer.disconnect();
    clearTimeout(timer);
    requestAnimationFrame(() => resolve(performance.now() - started));
  });
  observer.observe(log, { childList: true, subtree: true, characterData: true });
  started = performance.now();
  send.click();
})`;

async function main(): Promise<number> {
  console.log(`bench:web — real \`tagbox up\` (SQLite, shell engine, bubblewrap) as uid ${process.getuid?.()}, headless Chromium; ${N} rounds each, alternating`);
  const size = firstLoad();
  console.log(size.text);

  up = launchUp({ TAGBOX_AGENT_ENGINE: 'shell' });
  const { url, token } = await up.ready;
  const chat = (client = new ChatClient(url, token));
  const channels = await chat.get<Array<{ id: string; name: string }>>('/api/v1/channels');
  const channel = channels.find((c) => c.name === 'general')?.id;
  if (!channel) throw new Error(`no #general channel: ${JSON.stringify(channels)}`);

  // Two threads, each warmed up (its sandbox live): one for the API, one for the page.
  const apiThread = await chat.post(channel, 'echo warm-up');
  stream = await chat.stream(apiThread.thread);
  await stream.next(isDoneOf(await stream.turnOf(apiThread.message)), 'the API warm-up');
  const pageThread = await chat.post(channel, 'echo warm-up');
  const warm = await chat.stream(pageThread.thread);
  await warm.next(isDoneOf(await warm.turnOf(pageThread.message)), 'the page warm-up');
  warm.close();

  browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: process.getuid?.() === 0 ? ['--no-sandbox'] : [] });
  const context = await browser.newContext({ baseURL: url, extraHTTPHeaders: { authorization: `Bearer ${token}` } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(`/chat/c/${channel}/t/${pageThread.thread}`);
  await page.getByRole('status').getByText('Idle').waitFor({ timeout: 60_000 });
  // One unmeasured round each: the page's first send (permission prompt, code paths) is not what is measured.
  await apiRound(chat, stream, channel, apiThread.thread, 'tok-warm-api');
  await browserRound(page, 'tok-warm-page');

  const api: number[] = [];
  const web: number[] = [];
  for (let i = 0; i < N; i++) {
    api.push(await apiRound(chat, stream, channel, apiThread.thread, `tok-a${i}`));
    web.push(await browserRound(page, `tok-b${i}`));
  }
  const a = spread(api);
  const b = spread(web);
  console.log(row('api: POST -> first progress on the SSE stream', a, 'baseline'));
  console.log(row('browser: click Send -> first output on screen', b, `${(b.p50 / a.p50).toFixed(2)}x api (p50), ${(b.p90 / a.p90).toFixed(2)}x (p90)`));
  if (problems.length) console.log(`page errors: ${problems.join('; ')}`);
  return size.ok && problems.length === 0 ? 0 : 1;
}

main()
  .then(async (code) => {
    await cleanup();
    process.exitCode = code;
  })
  .catch(async (error: unknown) => {
    console.error(`bench:web: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    if (up) console.error(up.output().slice(-4000));
    await cleanup();
    process.exitCode = 1;
  });
