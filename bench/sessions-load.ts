/**
 * The session benchmark's load: many threads at once, each posting its next
 * message after the previous turn's `done` (as a person would), then the
 * proof that nothing was lost: every thread's live stream holds each event id
 * once and in order, its replies with the right text in order, one `done` per
 * turn; and a replay from 0 on a new connection is exactly what came live.
 */
import { HttpError, isDoneOf, type ChatClient, type StreamEvent, type ThreadStream } from './chat-client.js';

export interface LoadOptions {
  threads: number;
  perThread: number;
  /** Told of each stream opened (the caller closes them all when interrupted). */
  opened(stream: ThreadStream): void;
}

export interface LoadResult {
  wallMs: number;
  /** Messages answered 202. */
  sent: number;
  httpErrors: number;
  /** Replies and `done` events that never came. */
  lost: number;
  /** Event ids skipped on a stream (any type). */
  gaps: number;
  duplicates: number;
  wrong: number;
  replayMismatches: number;
  /** Threads that stopped early on something other than an HTTP error (a timeout, a closed stream). */
  stalled: number;
  /** The first few findings, for the report. */
  notes: string[];
  /** POST -> `done` of first messages (session and sandbox built) and of the others (both live). */
  firstMs: number[];
  laterMs: number[];
  /** Written -> received of every event that came live. */
  delays: number[];
  streams: ThreadStream[];
}

interface LoadThread {
  k: number;
  thread?: string;
  stream?: ThreadStream;
  sent: number;
  turns: string[];
  turnMs: number[];
  httpErrors: number;
  problems: string[];
}

export async function runLoad(chat: ChatClient, channel: string, options: LoadOptions): Promise<LoadResult> {
  const started = performance.now();
  const threads = await Promise.all(Array.from({ length: options.threads }, (_, k) => driveThread(chat, channel, k, options)));
  const wallMs = performance.now() - started;
  const result: LoadResult = {
    wallMs,
    sent: 0,
    httpErrors: 0,
    lost: 0,
    gaps: 0,
    duplicates: 0,
    wrong: 0,
    replayMismatches: 0,
    stalled: 0,
    notes: [],
    firstMs: threads.flatMap((r) => r.turnMs.slice(0, 1)),
    laterMs: threads.flatMap((r) => r.turnMs.slice(1)),
    delays: threads.flatMap((r) => r.stream?.live().map((e) => e.delay) ?? []),
    streams: threads.flatMap((r) => r.stream ?? []),
  };
  for (const r of threads) {
    result.sent += r.sent;
    result.httpErrors += r.httpErrors;
    const note = (what: string) => result.notes.length < 10 && result.notes.push(`t${r.k}: ${what}`);
    for (const problem of r.problems) note(problem);
    if (r.problems.length > 0) result.stalled += 1;
    checkThread(r, options.perThread, result, note);
    result.replayMismatches += await checkReplay(chat, r, note);
  }
  return result;
}

/** One thread: its first message starts it, its stream is opened on the 202 (from 0, so nothing is missed). */
async function driveThread(chat: ChatClient, channel: string, k: number, options: LoadOptions): Promise<LoadThread> {
  const r: LoadThread = { k, sent: 0, turns: [], turnMs: [], httpErrors: 0, problems: [] };
  try {
    for (let n = 1; n <= options.perThread; n++) {
      const started = performance.now();
      const posted = await chat.post(channel, `echo t${k}-${n}`, r.thread);
      r.sent += 1;
      r.thread ??= posted.thread;
      if (!r.stream) {
        r.stream = await chat.stream(posted.thread);
        options.opened(r.stream);
      }
      const turn = await r.stream.turnOf(posted.message);
      r.turns.push(turn);
      r.turnMs.push((await r.stream.next(isDoneOf(turn), `t${k}-${n} done`)).at - started);
    }
  } catch (error) {
    if (error instanceof HttpError) r.httpErrors += 1;
    else r.problems.push((error as Error).message);
  }
  return r;
}

type Counts = Pick<LoadResult, 'lost' | 'gaps' | 'duplicates' | 'wrong'>;

function checkThread(r: LoadThread, perThread: number, c: Counts, note: (what: string) => void): void {
  const events = r.stream?.events ?? [];
  // Ids are dense per thread, from 1: a gap is a lost event, a repeat a duplicate.
  const ids = new Set<number>();
  let expected = 1;
  for (const e of events) {
    if (ids.has(e.id)) {
      c.duplicates += 1;
      note(`event ${e.id} twice`);
      continue;
    }
    ids.add(e.id);
    if (e.id > expected) {
      c.gaps += e.id - expected;
      note(`events ${expected}..${e.id - 1} missing`);
    }
    expected = Math.max(expected, e.id + 1);
  }
  // Each turn's reply is found by its turn, so one loss is counted once and not as a shift of the rest.
  const replies = events.filter(isAgentMessage);
  for (let n = 1; n <= r.sent; n++) {
    const turn = r.turns[n - 1];
    const want = `t${r.k}-${n}\n[exit code 0]`;
    const mine = replies.filter((e) => turn !== undefined && e.data.turn === turn);
    if (mine.length === 0) {
      c.lost += 1;
      note(`reply ${n} missing`);
    } else if (mine.length > 1) {
      c.duplicates += mine.length - 1;
      note(`${mine.length} replies in turn ${n}`);
    }
    if (mine[0] && mine[0].data.text !== want) {
      c.wrong += 1;
      note(`reply ${n} is ${JSON.stringify(mine[0].data.text)}, expected ${JSON.stringify(want)}`);
    }
    const dones = events.filter((e) => e.type === 'done' && turn !== undefined && e.data.turn === turn);
    if (dones.length === 0) {
      c.lost += 1;
      note(`no done for turn ${n}`);
    } else if (dones.length > 1) {
      c.duplicates += dones.length - 1;
      note(`${dones.length} done events for turn ${n}`);
    } else if (dones[0]!.data.status !== 'done') {
      c.wrong += 1;
      note(`turn ${n} ended ${String(dones[0]!.data.status)}`);
    }
  }
  // In order: on the stream, the replies' turns are the turns as they were sent.
  const order = replies.map((e) => r.turns.indexOf(String(e.data.turn)));
  if (order.some((i, j) => j > 0 && i < order[j - 1]!)) {
    c.wrong += 1;
    note(`replies out of order: turns ${order.map((i) => i + 1).join(', ')}`);
  }
  const strays = events.filter((e) => (e.type === 'done' || isAgentMessage(e)) && !r.turns.includes(String(e.data.turn))).length;
  if (strays > 0) {
    c.wrong += strays;
    note(`${strays} reply or done event(s) of turns nobody sent`);
  }
  if (r.sent < perThread && r.httpErrors === 0 && r.problems.length === 0) note(`only ${r.sent} of ${perThread} messages sent`);
}

/** The durable log, replayed from 0 on a new connection, must be what the live stream delivered. */
async function checkReplay(chat: ChatClient, r: LoadThread, note: (what: string) => void): Promise<number> {
  const live = r.stream?.events ?? [];
  const last = live.at(-1);
  if (!r.thread || !last) return 0;
  const replay = await chat.stream(r.thread, 0);
  try {
    await replay.next((e) => e.id === last.id, `replay of t${r.k}`, 30_000);
    const key = (e: StreamEvent) => `${e.id}:${e.type}:${JSON.stringify(e.data)}`;
    const mismatches = live.filter((e, i) => !replay.events[i] || key(replay.events[i]!) !== key(e)).length;
    if (mismatches > 0) note(`replay differs from the live stream in ${mismatches} event(s)`);
    return mismatches;
  } finally {
    replay.close();
  }
}

function isAgentMessage(e: StreamEvent): boolean {
  return e.type === 'message' && (e.data.author as { kind?: string } | undefined)?.kind === 'agent';
}
