import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from '../api';
import { eventsUrl, getThread, type ThreadDetail } from './chat-api';
import { apply, emptyThread, withMessages, type ThreadEvent, type ThreadState } from './thread-model';

const EVENT_NAMES = ['message', 'progress', 'notice', 'status', 'usage', 'error', 'done'];

export type Connection = 'connecting' | 'live' | 'reconnecting';

export interface LiveThread {
  detail: ThreadDetail | undefined;
  state: ThreadState;
  connection: Connection;
  error: ApiError | undefined;
}

/**
 * A thread, live: GET /threads/{id}, then its event stream from the start (the
 * log says which turn each message belongs to). The browser resumes a dropped
 * stream itself with Last-Event-ID; a stream it gave up on is re-opened here
 * with ?after=<the last id applied>. `apply` drops ids already applied, so
 * neither shows anything twice. `onEvent` hears each event applied.
 */
export function useThread(thread: string, onEvent: (event: ThreadEvent, state: ThreadState) => void): LiveThread {
  const [detail, setDetail] = useState<ThreadDetail | undefined>();
  const [state, setState] = useState<ThreadState>(emptyThread);
  const [connection, setConnection] = useState<Connection>('connecting');
  const [error, setError] = useState<ApiError | undefined>();
  const listener = useRef(onEvent);
  listener.current = onEvent;

  useEffect(() => {
    let current = emptyThread();
    let source: EventSource | undefined;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;
    const abort = new AbortController();
    setDetail(undefined);
    setState(current);
    setError(undefined);
    setConnection('connecting');

    const take = (type: string) => (e: Event) => {
      // A connection failure is an `error` too, without data; the server's `error` events have it.
      if (!(e instanceof MessageEvent)) return;
      const seq = Number(e.lastEventId);
      if (!Number.isSafeInteger(seq) || seq <= 0) return;
      let data: unknown;
      try {
        data = JSON.parse(String(e.data));
      } catch {
        return;
      }
      if (typeof data !== 'object' || data === null || Array.isArray(data)) return;
      const event = { seq, type, data: data as Record<string, unknown> };
      const next = apply(current, event);
      if (next === current) return;
      current = next;
      setState(next);
      listener.current(event, next);
    };

    const open = () => {
      if (stopped) return;
      const es = new EventSource(eventsUrl(thread, current.cursor));
      source = es;
      es.onopen = () => setConnection('live');
      for (const name of EVENT_NAMES) es.addEventListener(name, take(name));
      es.onerror = () => {
        if (stopped) return;
        if (es.readyState === EventSource.CLOSED) {
          // The browser gave up (an answer that was not a stream): open again ourselves, from where we are.
          setConnection('reconnecting');
          retry = setTimeout(open, 2000);
        } else setConnection('reconnecting');
      };
    };

    getThread(thread, abort.signal).then(
      (d) => {
        if (stopped) return;
        setDetail(d);
        current = withMessages(current, d.messages);
        setState(current);
        open();
      },
      (e: unknown) => {
        if (stopped) return;
        setError(e instanceof ApiError ? e : new ApiError(0, 'network', String(e)));
      },
    );
    return () => {
      stopped = true;
      abort.abort();
      clearTimeout(retry);
      source?.close();
    };
  }, [thread]);

  return { detail, state, connection, error };
}
