import { describeError } from '../../errors.js';
import type { ApiClient } from '../api-client.js';
import { followTurn } from './follow-turn.js';
import type { ChatPlace } from './place.js';
import { postMessage } from './post.js';
import type { TurnView } from './turn-view.js';

export type ExchangeResult =
  | { kind: 'answered'; thread: string; exitCode: number; cursor: number }
  | { kind: 'refused'; thread: string | undefined }
  /** The user left before the turn ended (it goes on in the thread). */
  | { kind: 'left'; thread: string | undefined };

/** One message and the turn that answers it, with the user's two ways out. */
export interface Exchange {
  readonly result: Promise<ExchangeResult>;
  /** The thread, once known (at once for a continued thread, after the post for a new one). */
  readonly thread: string | undefined;
  /** Stops the turn (POST cancel; at once, or as soon as the post has made the thread). */
  cancel(): void;
  /** Stops following: the turn goes on, the command moves on. */
  leave(): void;
}

/**
 * Posts `text` (in `thread`, or a new thread) and follows its turn, printing
 * through `view`. `after` is a cursor before our message in an existing
 * thread (0 when unknown: the history is read past, not printed).
 */
export function exchange(client: ApiClient, place: ChatPlace, text: string, options: { thread?: string; after?: number; view: TurnView }): Exchange {
  const { view } = options;
  const stop = new AbortController();
  let thread = options.thread;
  let cancelWanted = false;
  let cancelSent = false;
  const sendCancel = () => {
    if (cancelSent || thread === undefined) return;
    cancelSent = true;
    client.call<{ cancelled: boolean }>('POST', `/api/v1/threads/${encodeURIComponent(thread)}/cancel`).then(
      (answer) => {
        if (!answer.cancelled) view.note('nothing to stop: the turn had not started or was over');
      },
      (error: unknown) => view.note(`could not stop the turn: ${describeError(error)}`),
    );
  };
  const run = async (): Promise<ExchangeResult> => {
    const posted = await postMessage(client, place, text, thread);
    if (posted.status === 'refused') {
      view.note(`refused (${posted.reason}): ${posted.message}`);
      return { kind: 'refused', thread: posted.thread ?? thread };
    }
    const continued = thread === posted.thread;
    thread = posted.thread;
    if (posted.duplicate) view.note('the server already had this message (a retry); following its turn');
    if (cancelWanted) sendCancel();
    if (stop.signal.aborted) return { kind: 'left', thread };
    const outcome = await followTurn(client, { thread, message: posted.message, after: continued ? (options.after ?? 0) : 0, view, signal: stop.signal });
    return outcome ? { kind: 'answered', thread, exitCode: outcome.exitCode, cursor: outcome.cursor } : { kind: 'left', thread };
  };
  return {
    result: run(),
    get thread() {
      return thread;
    },
    cancel() {
      cancelWanted = true;
      sendCancel();
    },
    leave() {
      stop.abort();
    },
  };
}
