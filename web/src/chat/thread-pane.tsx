import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from '../api';
import { navigate } from '../router';
import { Loading } from '../ui/parts';
import { cancelTurn, placePath, type Place, type Posted } from './chat-api';
import { Composer } from './composer';
import { turnFinished } from './notify';
import { items, liveStatus, type ThreadEvent, type ThreadState } from './thread-model';
import { MessageView, TurnView } from './turn-view';
import { useThread } from './use-thread';

/** An event older than this is history being replayed, not news (the tab may open hidden). */
const NEWS_MS = 60_000;

/** One thread: its messages and turns live, its status, Stop, and the composer. */
export function ThreadPane(props: { place: Place; placeName: string; thread: string; onActivity: () => void }) {
  const { place, placeName, thread, onActivity } = props;
  const onEvent = (event: ThreadEvent, state: ThreadState) => {
    if (event.type !== 'done') return;
    onActivity();
    const ts = Date.parse(String(event.data.ts ?? ''));
    if (event.data.status === 'joined' || !(Date.now() - ts < NEWS_MS)) return;
    const turn = String(event.data.turn ?? '');
    const answer = state.order.map((id) => state.messages[id]!).filter((m) => m.turn === turn && m.author.kind === 'agent').at(-1);
    turnFinished(placeName, answer?.text, thread);
  };
  const live = useThread(thread, onEvent);
  const [stopError, setStopError] = useState<string | undefined>();
  const [stopping, setStopping] = useState(false);
  const log = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const status = liveStatus(live.state);
  const list = items(live.state);

  // Follow the end of the log, unless the member scrolled up to read.
  useEffect(() => {
    const el = log.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  });
  useEffect(() => setStopError(undefined), [thread]);

  if (live.error) {
    return (
      <section class="thread" aria-label="Thread">
        <p class="error-note" role="alert">
          {live.error.status === 404 ? 'This thread does not exist, or you may not see it.' : `The thread could not be loaded: ${live.error.message}`}
        </p>
      </section>
    );
  }

  const stop = async () => {
    setStopping(true);
    setStopError(undefined);
    try {
      await cancelTurn(thread);
    } catch (e) {
      setStopError(e instanceof ApiError ? e.message : String(e));
    } finally {
      setStopping(false);
    }
  };
  const title = live.detail?.messages.find((m) => m.author.kind === 'member')?.text.split('\n')[0]?.slice(0, 80) ?? 'Thread';
  const posted = (p: Posted) => {
    onActivity();
    if (p.thread !== thread) navigate(placePath(place, p.thread));
  };

  return (
    <section class="thread" aria-label={`Thread in ${placeName}`}>
      <header class="thread-head">
        <div class="thread-title">
          <span class="thread-place">{placeName}</span>
          <h1 title={title}>{title}</h1>
        </div>
        <div class="thread-status" role="status">
          <StatusText state={status.state} ahead={status.ahead} connection={live.connection} />
        </div>
        {status.state !== 'idle' && (
          <button type="button" class="btn btn-danger" onClick={() => void stop()} disabled={stopping}>
            {stopping ? 'Stopping…' : 'Stop'}
          </button>
        )}
      </header>
      {stopError && (
        <p class="error-note" role="alert">
          Could not stop the turn: {stopError}
        </p>
      )}
      <div
        class="log"
        ref={log}
        role="log"
        aria-live="polite"
        aria-label="Messages"
        tabIndex={0}
        onScroll={(e) => {
          const el = e.currentTarget as HTMLDivElement;
          stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 60;
        }}
      >
        {!live.detail && <Loading what="the thread" />}
        {list.map((item) => (item.kind === 'message' ? <MessageView key={item.message.id} message={item.message} joined={item.joined} /> : <TurnView key={`turn-${item.turn.id}`} turn={item.turn} answers={item.answers} notes={item.notes} />))}
      </div>
      <Composer place={place} thread={thread} label={`Reply in ${placeName}`} autoFocus onPosted={posted} />
    </section>
  );
}

function StatusText({ state, ahead, connection }: { state: 'idle' | 'queued' | 'running'; ahead: number | undefined; connection: string }) {
  const text = state === 'running' ? 'Agent running' : state === 'queued' ? `Queued${ahead !== undefined ? ` — ${ahead} ahead` : ''}` : 'Idle';
  return (
    <>
      <span class={`dot dot-${state}`} aria-hidden="true" />
      {text}
      {connection === 'reconnecting' && <span class="reconnecting"> · reconnecting…</span>}
    </>
  );
}
