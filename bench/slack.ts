/**
 * npm run bench:slack — Slack as a member meets it, against the chat API as the baseline, in one real
 * `tagbox up` (shell engine, bubblewrap; fresh TAGBOX_HOME, SQLite) connected in Socket Mode to the fake
 * Slack (test/fixtures/fake-slack.ts) running in this process, through the Agent Proxy:
 *   slack  a reply in a thread the agent is already in (its sandbox live): from the moment the event is
 *          handed to the Socket Mode connection (`fake.socket.deliver`) to
 *            progress  the first `reactions.add` on that message or non-empty `assistant.threads.setStatus`
 *                      on its thread that the fake receives, and
 *            answer    the first chat.startStream / appendStream / postMessage / update (or stopStream, if
 *                      nothing was streamed before it) in that thread whose text holds the round's token.
 *          Both end at the fake's arrival stamp of the call (`FakeSlackCall.at`), on this process's clock.
 *   api    POST a message to a web thread -> the first SSE event after our own message (status running),
 *          and -> the first `progress` event holding the token.
 * Command per round: `echo <token>; sleep 1; echo end`. Rounds alternate (api, slack, …), each waiting for
 * its turn's end (`done` on the stream; the cleared status in Slack). BENCH_SLACK_N sets the rounds
 * (default 20 each). Fails (exit 1) only when something is broken: an HTTP error, an answer that never comes.
 */
import { chmodSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { createTestCa } from '../test/fixtures/ca.js';
import { startFakeSlack, type FakeSlack, type FakeSlackCall } from '../test/fixtures/fake-slack.js';
import { ChatClient, HttpError, isDoneOf, type ThreadStream } from './chat-client.js';
import { line, stats, type Stats } from './stats.js';
import { launchUp, type TagboxUp } from './tagbox-up.js';

const N = (() => {
  const raw = process.env.BENCH_SLACK_N;
  if (raw === undefined) return 20;
  if (!/^[1-9]\d{0,3}$/.test(raw)) {
    console.error(`bench:slack: BENCH_SLACK_N: expected a whole number from 1 to 9999, got "${raw}"`);
    process.exit(2);
  }
  return Number(raw);
})();

const command = (tok: string) => `echo ${tok}; sleep 1; echo end`;
const ROUND_TIMEOUT_MS = 120_000;

let up: TagboxUp | undefined;
let client: ChatClient | undefined;
let fake: FakeSlack | undefined;
let stream: ThreadStream | undefined;
let cleaning: Promise<void> | undefined;
const cleanup = () =>
  (cleaning ??= (async () => {
    stream?.close();
    await client?.destroy().catch(() => undefined);
    await up?.stop();
    await fake?.close().catch(() => undefined);
  })());
process.stdout.on('error', () => undefined);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (cleaning) return;
    console.error(`${signal}: stopping tagbox up`);
    void cleanup().finally(() => process.exit(130));
  });
}

/** An admin API call that must succeed (`want`: its status). */
async function api(chat: ChatClient, token: string, method: 'PUT' | 'POST', path: string, body: unknown, want: number): Promise<void> {
  const res = await request(`${chat.url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    dispatcher: chat.dispatcher,
  });
  const text = await res.body.text();
  if (res.statusCode !== want) throw new HttpError(`${method} ${path}: ${res.statusCode} (wanted ${want}) ${text.slice(0, 300)}`);
}

/** The first call, from index `from` on, that matches; polls the fake's record (its own stamp is what counts). */
async function callAfter(f: FakeSlack, from: number, match: (c: FakeSlackCall) => boolean, what: string): Promise<FakeSlackCall> {
  const end = performance.now() + ROUND_TIMEOUT_MS;
  for (;;) {
    const found = f.calls.slice(from).find((c) => !c.rateLimited && match(c));
    if (found) return found;
    if (performance.now() > end) throw new Error(`${what}: no such Slack call within ${ROUND_TIMEOUT_MS / 1000} s`);
    await sleep(2);
  }
}

const ANSWER_METHODS = new Set(['chat.startStream', 'chat.appendStream', 'chat.postMessage', 'chat.update', 'chat.stopStream']);
const textOf = (c: FakeSlackCall) => String(c.params.markdown_text ?? c.params.text ?? '');
const inThread = (c: FakeSlackCall, channel: string, threadTs: string) =>
  (c.params.channel ?? c.params.channel_id) === channel && (c.params.thread_ts === undefined || c.params.thread_ts === threadTs);

/** The thread's status cleared (the turn's `done`), from index `from` on. */
const cleared = (channel: string, threadTs: string) => (c: FakeSlackCall) =>
  c.method === 'assistant.threads.setStatus' && c.params.channel_id === channel && c.params.thread_ts === threadTs && !c.params.status;

interface Round {
  progress: number;
  answer: number;
}

/** One API round: POST, then the stream until status running and the first progress with `tok`; waits for done. */
async function apiRound(chat: ChatClient, s: ThreadStream, channel: string, thread: string, tok: string): Promise<Round> {
  const started = performance.now();
  const posted = await chat.post(channel, command(tok), thread);
  const turn = await s.turnOf(posted.message);
  const running = await s.next((e) => e.type === 'status' && e.data.turn === turn && e.data.state === 'running', `status running of ${tok}`);
  const first = await s.next((e) => e.type === 'progress' && e.data.turn === turn && String(e.data.text).includes(tok), `output ${tok}`);
  await s.next(isDoneOf(turn), `done of ${tok}`);
  return { progress: running.at - started, answer: first.at - started };
}

/** One Slack round: a reply in the agent's thread, delivered over Socket Mode; waits for the cleared status. */
async function slackRound(f: FakeSlack, channel: string, rootTs: string, user: string, tok: string): Promise<Round> {
  const { ts, payloads } = f.userMessage({ channel, user, text: command(tok), threadTs: rootTs });
  const from = f.calls.length;
  const started = performance.now();
  for (const payload of payloads) if (!(await f.socket.deliver(payload))) throw new Error(`${tok}: the Socket Mode delivery was not acked`);
  const progress = await callAfter(
    f,
    from,
    (c) =>
      (c.method === 'reactions.add' && c.params.channel === channel && c.params.timestamp === ts) ||
      (c.method === 'assistant.threads.setStatus' && c.params.channel_id === channel && c.params.thread_ts === rootTs && Boolean(c.params.status)),
    `first progress of ${tok}`,
  );
  const answer = await callAfter(f, from, (c) => ANSWER_METHODS.has(c.method) && inThread(c, channel, rootTs) && textOf(c).includes(tok), `answer of ${tok}`);
  await callAfter(f, from, cleared(channel, rootTs), `end of ${tok}`);
  return { progress: progress.at - started, answer: answer.at - started };
}

/** The statuses the API gives (`state`) as the stream names them; checked once so a rename fails loudly. */
function checkStatusShape(s: ThreadStream): void {
  if (!s.events.some((e) => e.type === 'status' && e.data.state === 'running')) {
    const seen = [...new Set(s.events.filter((e) => e.type === 'status').map((e) => JSON.stringify(e.data)))].slice(0, 3);
    throw new Error(`the warm-up's stream has no status event with state "running": ${seen.join('; ') || 'no status events'}`);
  }
}

async function main(): Promise<number> {
  console.log(`bench:slack — real \`tagbox up\` (SQLite, shell engine, bubblewrap) as uid ${process.getuid?.()}, fake Slack in Socket Mode through the Agent Proxy; ${N} rounds each, alternating`);
  const ca = await createTestCa();
  // The proxy runs as tagbox-proxy when separated: it must read the upstream CA.
  chmodSync(dirname(ca.certFile), 0o755);
  const f = (fake = await startFakeSlack({ ca }));

  up = launchUp({ TAGBOX_AGENT_ENGINE: 'shell', TAGBOX_UPSTREAM_CONNECT_TO: f.connectTo, TAGBOX_UPSTREAM_CA_FILE: ca.certFile });
  const { url, token } = await up.ready;
  const chat = (client = new ChatClient(url, token));

  // Slack: the tokens in the vault, the team connected, then one tagged message to put the agent in a thread.
  await api(chat, token, 'PUT', '/secrets/bench-slack-bot', { value: f.botToken }, 200);
  await api(chat, token, 'PUT', '/secrets/bench-slack-app', { value: f.appToken }, 200);
  await api(chat, token, 'POST', '/workspaces', { kind: 'slack', externalId: f.teamId, name: 'Bench', slack: { mode: 'socket', botTokenSecret: 'bench-slack-bot', appTokenSecret: 'bench-slack-app' } }, 201);
  await f.socket.waitForConnections(1, 60_000);
  const user = f.addUser({ name: 'alice' }).id;
  const slackChannel = f.addChannel({ name: 'bench' }).id;
  const root = f.userMessage({ channel: slackChannel, user, text: `<@${f.botUserId}> echo warm-up` });
  const from = f.calls.length;
  for (const payload of root.payloads) if (!(await f.socket.deliver(payload))) throw new Error('the warm-up delivery was not acked');
  await callAfter(f, from, cleared(slackChannel, root.ts), 'the Slack warm-up');

  // The API: a web thread, warmed up (its sandbox live).
  const channels = await chat.get<Array<{ id: string; name: string }>>('/api/v1/channels');
  const channel = channels.find((c) => c.name === 'general')?.id;
  if (!channel) throw new Error(`no #general channel: ${JSON.stringify(channels)}`);
  const apiThread = await chat.post(channel, 'echo warm-up');
  stream = await chat.stream(apiThread.thread);
  await stream.next(isDoneOf(await stream.turnOf(apiThread.message)), 'the API warm-up');
  checkStatusShape(stream);

  // One unmeasured round each: first replies take code paths (and caches) the later ones do not.
  await apiRound(chat, stream, channel, apiThread.thread, 'tok-warm-api');
  await slackRound(f, slackChannel, root.ts, user, 'tok-warm-slack');

  const apiRounds: Round[] = [];
  const slackRounds: Round[] = [];
  for (let i = 0; i < N; i++) {
    apiRounds.push(await apiRound(chat, stream, channel, apiThread.thread, `tok-a${i}`));
    slackRounds.push(await slackRound(f, slackChannel, root.ts, user, `tok-s${i}`));
  }
  const ap = stats(apiRounds.map((r) => r.progress));
  const aa = stats(apiRounds.map((r) => r.answer));
  const sp = stats(slackRounds.map((r) => r.progress));
  const sa = stats(slackRounds.map((r) => r.answer));
  const x = (s: Stats, b: Stats) => `slack/api ${(s.p50 / b.p50).toFixed(2)}x (p50), ${(s.p99 / b.p99).toFixed(2)}x (p99)`;
  console.log(line('api: POST -> status running (SSE)', ap));
  console.log(line('api: POST -> first progress with token', aa));
  console.log(`${line('slack: event -> first reaction/status', sp)}  ${x(sp, ap)}`);
  console.log(`${line('slack: event -> first answer token', sa)}  ${x(sa, aa)}`);
  return 0;
}

main()
  .then(async (code) => {
    await cleanup();
    process.exitCode = code;
  })
  .catch(async (error: unknown) => {
    console.error(`bench:slack: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    if (up) console.error(up.output().slice(-4000));
    await cleanup();
    process.exitCode = 1;
  });
