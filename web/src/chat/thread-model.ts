import { safeHref } from '../text/rich-text-parse.js';
/**
 * A thread as the page shows it, built from its messages (GET /threads/{id})
 * and its event log (SSE, CONTRACT.md "Talking to the agent"). Pure: `apply`
 * returns a new state, and an event whose id was applied already is ignored,
 * so a replay after a reconnect never shows anything twice.
 */

export interface Author {
  kind: 'member' | 'agent' | 'system';
  id?: string;
  name?: string;
}

export interface ChatMessage {
  id: string;
  author: Author;
  text: string;
  ts: string;
  /** The turn it belongs to (known from its `message` event). */
  turn?: string;
}

export interface ThreadEvent {
  seq: number;
  type: string;
  data: Record<string, unknown>;
}

export interface Notice {
  seq: number;
  kind: string;
  host?: string;
  text: string;
  /** A pull request's link (checked by safeHref: http(s) only). */
  href?: string;
}

export type TurnState = 'queued' | 'running' | 'done' | 'cancelled' | 'interrupted' | 'failed' | 'joined';

export interface Turn {
  id: string;
  state: TurnState;
  /** Turns of the org ahead of this one, while queued. */
  ahead?: number;
  /** The streamed output, its end only (an agent's reply is at most 1 MiB). */
  progress: string;
  steps: number;
  notices: Notice[];
  errors: string[];
  usage?: Record<string, unknown>;
  exitCode?: number;
  /** The turn a joined one's message moved into. */
  into?: string;
}

export interface ThreadState {
  /** The last event id applied: where a manual re-open resumes (`?after=`). */
  cursor: number;
  /** Messages in the order they came. */
  order: string[];
  messages: Record<string, ChatMessage>;
  turns: Record<string, Turn>;
  /** Turns in the order first seen. */
  turnOrder: string[];
}

const PROGRESS_KEPT = 256 * 1024;

export function emptyThread(): ThreadState {
  return { cursor: 0, order: [], messages: {}, turns: {}, turnOrder: [] };
}

/** The messages of GET /threads/{id}: shown at once, before the event log tells their turns. */
export function withMessages(state: ThreadState, messages: ChatMessage[]): ThreadState {
  let next = state;
  for (const m of messages) next = putMessage(next, m);
  return next;
}

function putMessage(state: ThreadState, message: ChatMessage): ThreadState {
  const known = state.messages[message.id];
  const merged = known ? { ...known, ...message, turn: message.turn ?? known.turn } : message;
  return { ...state, messages: { ...state.messages, [message.id]: merged }, order: known ? state.order : [...state.order, message.id] };
}

function turnOf(state: ThreadState, id: string): { state: ThreadState; turn: Turn } {
  const known = state.turns[id];
  if (known) return { state, turn: known };
  const turn: Turn = { id, state: 'queued', progress: '', steps: 0, notices: [], errors: [] };
  return { state: { ...state, turns: { ...state.turns, [id]: turn }, turnOrder: [...state.turnOrder, id] }, turn };
}

function putTurn(state: ThreadState, turn: Turn): ThreadState {
  return { ...state, turns: { ...state.turns, [turn.id]: turn } };
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export function apply(state: ThreadState, event: ThreadEvent): ThreadState {
  // Ids are dense and ordered per thread: anything at or below the cursor was applied.
  if (event.seq <= state.cursor) return state;
  let next: ThreadState = { ...state, cursor: event.seq };
  const data = event.data;
  const turnId = str(data.turn);
  if (event.type === 'message') {
    const id = str(data.id);
    if (!id) return next;
    const author = (typeof data.author === 'object' && data.author !== null ? data.author : { kind: 'system' }) as Author;
    next = putMessage(next, { id, author, text: str(data.text) ?? '', ts: str(data.ts) ?? new Date().toISOString(), ...(turnId ? { turn: turnId } : {}) });
    if (turnId) next = turnOf(next, turnId).state;
    return next;
  }
  if (!turnId) return next;
  const found = turnOf(next, turnId);
  next = found.state;
  const turn = { ...found.turn };
  switch (event.type) {
    case 'status': {
      const s = str(data.state);
      if (s === 'running' && turn.state === 'queued') turn.state = 'running';
      if (s === 'queued' && turn.state === 'queued' && typeof data.ahead === 'number') turn.ahead = data.ahead;
      break;
    }
    case 'progress':
      turn.progress = (turn.progress + (str(data.text) ?? '')).slice(-PROGRESS_KEPT);
      turn.steps += 1;
      if (turn.state === 'queued') turn.state = 'running';
      break;
    case 'notice':
      {
        const href = str(data.kind) === 'pull-request' && str(data.url) ? safeHref(str(data.url)!) : undefined;
        turn.notices = [...turn.notices, { seq: event.seq, kind: str(data.kind) ?? 'notice', ...(str(data.host) ? { host: str(data.host)! } : {}), text: str(data.text) ?? `notice: ${str(data.host) ?? ''}`, ...(href ? { href } : {}) }];
      }
      break;
    case 'error':
      turn.errors = [...turn.errors, str(data.message) ?? 'the agent reported an error'];
      break;
    case 'usage':
      turn.usage = data;
      break;
    case 'done': {
      const status = str(data.status);
      turn.state = (['done', 'cancelled', 'interrupted', 'failed', 'joined'] as const).find((s) => s === status) ?? 'done';
      if (typeof data.exitCode === 'number') turn.exitCode = data.exitCode;
      if (status === 'joined' && str(data.into)) turn.into = str(data.into)!;
      break;
    }
    default:
      // An event type of a newer server: its id still counts as applied.
      return next;
  }
  return putTurn(next, turn);
}

export const isOpen = (turn: Turn) => turn.state === 'queued' || turn.state === 'running';

/** The thread's live status: the newest open turn's. */
export function liveStatus(state: ThreadState): { state: 'idle' | 'queued' | 'running'; ahead?: number } {
  const open = state.turnOrder.map((id) => state.turns[id]!).filter(isOpen);
  const running = open.find((t) => t.state === 'running');
  if (running) return { state: 'running' };
  const queued = open[0];
  if (queued) return { state: 'queued', ...(queued.ahead !== undefined ? { ahead: queued.ahead } : {}) };
  return { state: 'idle' };
}

/** What the page lists, in order: messages, and each turn's block after the first message that started it. */
export type Item = { kind: 'message'; message: ChatMessage; joined?: boolean } | { kind: 'turn'; turn: Turn; answers: ChatMessage[]; notes: ChatMessage[] };

export function items(state: ThreadState): Item[] {
  const out: Item[] = [];
  const placed = new Set<string>();
  // A joined turn's message belongs to the turn it moved into.
  const target = (id: string): string => {
    let t = id;
    for (let i = 0; i < 10 && state.turns[t]?.into; i++) t = state.turns[t]!.into!;
    return t;
  };
  const ofTurn = (id: string) => state.order.map((m) => state.messages[m]!).filter((m) => m.turn && target(m.turn) === id && m.author.kind !== 'member');
  const block = (id: string): Item => {
    const inTurn = ofTurn(id);
    return { kind: 'turn', turn: state.turns[id]!, answers: inTurn.filter((m) => m.author.kind === 'agent'), notes: inTurn.filter((m) => m.author.kind === 'system') };
  };
  for (const id of state.order) {
    const m = state.messages[id]!;
    if (m.turn && m.author.kind !== 'member' && state.turns[target(m.turn)]) continue;
    const joined = Boolean(m.turn && state.turns[m.turn]?.into);
    out.push({ kind: 'message', message: m, ...(joined ? { joined } : {}) });
    if (m.author.kind === 'member' && m.turn && !joined && !placed.has(m.turn) && state.turns[m.turn]) {
      placed.add(m.turn);
      out.push(block(m.turn));
    }
  }
  // Turns no message of ours started (its message is older than what we have): at the end, in order.
  for (const id of state.turnOrder) if (!placed.has(id) && !state.turns[id]!.into) out.push(block(id));
  return out;
}
