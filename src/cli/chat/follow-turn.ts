import { failure } from '../../errors.js';
import type { ApiClient } from '../api-client.js';
import { threadEvents, type ThreadEvent } from './thread-events.js';
import type { TurnView } from './turn-view.js';

export interface FollowTurnInput {
  thread: string;
  /** The id of the message we posted. */
  message: string;
  /** A cursor known to be before our message (0 for a thread we just started). */
  after: number;
  view: TurnView;
  signal: AbortSignal;
  retryForMs?: number;
}

export interface TurnOutcome {
  exitCode: number;
  /** The seq of the turn's `done`: where to resume for the next message. */
  cursor: number;
}

/**
 * Follows the turn that answers our message, from a cursor before it so that
 * nothing of the turn is missed. Our turn is the one the thread's `message`
 * event with our message's id names; the events of other turns are not ours
 * (earlier ones are history, later ones someone else's). A `status` of our
 * turn sent before our message joined it (it was already queued) is shown
 * when we learn the turn. Ends at our turn's `done`; undefined when aborted.
 */
export async function followTurn(client: ApiClient, input: FollowTurnInput): Promise<TurnOutcome | undefined> {
  const events = threadEvents(client, input.thread, {
    after: input.after,
    signal: input.signal,
    ...(input.retryForMs !== undefined ? { retryForMs: input.retryForMs } : {}),
    onConnection: (_state, detail) => input.view.note(detail),
  });
  try {
    return await untilOurDone(events, input);
  } finally {
    // Not awaited: closing the stream waits for its socket, and the turn is
    // over (for the prompt, for Ctrl-D) as soon as its `done` is.
    void events.return(undefined).catch(() => undefined);
  }
}

async function untilOurDone(events: AsyncGenerator<ThreadEvent>, input: FollowTurnInput): Promise<TurnOutcome | undefined> {
  const { view } = input;
  let ours: string | undefined;
  const earlierStatus = new Map<string, ThreadEvent>();
  // By hand, not for-await: leaving a for-await would wait for the stream to close.
  for (let next = await events.next(); !next.done; next = await events.next()) {
    const event = next.value;
    const turn = typeof event.data.turn === 'string' ? event.data.turn : undefined;
    if (ours === undefined) {
      if (event.type === 'message' && event.data.id === input.message) {
        if (!turn) throw failure(`the server did not say which turn answers message ${input.message}`);
        ours = turn;
        view.own(event);
        const status = earlierStatus.get(turn);
        if (status) view.show(status);
      } else if (turn && event.type === 'status') {
        earlierStatus.set(turn, event);
      } else if (turn && event.type === 'done') {
        earlierStatus.delete(turn);
      }
      continue;
    }
    if (turn !== ours) continue;
    // Our message joined the turn that was running (an engine that takes messages mid-turn): follow that one.
    if (event.type === 'done' && event.data.status === 'joined' && typeof event.data.into === 'string') {
      ours = event.data.into;
      continue;
    }
    if (event.type === 'done') return { exitCode: view.done(event), cursor: event.seq };
    view.show(event);
  }
  // The stream ends without our `done` only when aborted (threadEvents reconnects otherwise).
  return undefined;
}
